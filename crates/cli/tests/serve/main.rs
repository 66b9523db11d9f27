//! The real `roster serve` process: graceful shutdown on SIGTERM, rate-limit
//! overrides from the config file, and secrets kept out of its logs.
//! All tests are modules of this one binary, which links once.

mod support;

mod custom_attributes;
mod limits;
mod logs;
mod shutdown;
