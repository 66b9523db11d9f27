//! Integration tests: the real server on a real port against a real SQLite file.
//! All modules form one test binary, because each file in tests/ links separately.

mod support;

mod api_directories;
mod api_users;
mod events;
mod smoke;
mod webhooks;
