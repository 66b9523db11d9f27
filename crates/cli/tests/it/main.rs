//! Integration tests of `roster sync`: the real binary against Roster servers
//! started in this process, and against a fault-injecting proxy in front of
//! one. One test binary (links are slow on 2 cores).

// A test crate of its own: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers beside them, which fail a test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod faults;
mod roster;
mod support;
