//! Filters: grammar, syntax tree, schema check and the in-memory evaluator.

mod ast;
mod check;
mod eval;
mod lexer;
mod parser;

#[cfg(test)]
mod eval_tests;
#[cfg(test)]
mod parser_tests;

pub use ast::{CompValue, CompareOp, Filter, PatchPath};
pub use check::check_filter;
pub use eval::{Matcher, matches, matches_element};
pub use parser::{
    MAX_NESTING, MAX_TREE_DEPTH, parse_filter, parse_filter_nested, parse_patch_path,
};
