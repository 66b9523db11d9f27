//! The behavioural suite: every module of it, listed once. `tests/it` runs
//! it against SQLite and `tests/pg` against PostgreSQL; both load this file
//! with `#[path]`, which makes its modules' files the ones beside it.

mod admin_keys;
mod api_directories;
mod api_users;
mod audit_log;
mod bulk;
mod bulk_limits;
mod conformance_fixes;
mod counts;
mod custom_attributes;
mod db_outage;
mod discovery;
mod early_answers;
mod errors;
mod etags;
mod events;
mod extensions;
mod filters;
mod google;
mod hardening_errors;
mod hardening_filters;
mod hardening_limits;
mod hardening_load;
mod hardening_sockets;
mod health;
mod idp_replay;
mod isolation;
mod isolation_matrix;
mod metrics;
mod openapi;
mod paging;
mod patch;
mod portal_links;
mod projection;
mod provider_requests;
mod smoke;
mod user_groups;
mod users;
mod web_admin;
mod web_portal;
mod webhooks;
mod workos_api;
mod workos_webhooks;
