//! Integration tests of `roster sync`: the real binary against Roster servers
//! started in this process, and against a fault-injecting proxy in front of
//! one. One test binary (links are slow on 2 cores).

mod faults;
mod roster;
mod support;
