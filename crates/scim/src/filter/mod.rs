//! Filters: grammar, syntax tree and the in-memory evaluator.

mod ast;
mod lexer;
mod parser;

#[cfg(test)]
mod parser_tests;

pub use ast::{CompValue, CompareOp, Filter, PatchPath};
pub use parser::{MAX_NESTING, MAX_TREE_DEPTH, parse_filter, parse_patch_path};
