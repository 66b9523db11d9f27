//! Filters: grammar, syntax tree and the in-memory evaluator.

mod ast;

pub use ast::{CompValue, CompareOp, Filter, PatchPath};
