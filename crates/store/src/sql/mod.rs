//! SQL shared by the stores: the filter compiler and sort keys.

pub mod compile;

pub use compile::{CompiledSort, Compiler, SqlParam};
