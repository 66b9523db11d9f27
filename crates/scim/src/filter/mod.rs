//! Filters: grammar, syntax tree, schema check and the in-memory evaluator.
//!
//! A filter moves through two types: [`parse_filter`] gives a [`Filter`]
//! (syntax only), and [`check_filter`] turns it into a [`CheckedFilter`]
//! (paths resolved, values typed). The evaluator here and the store's SQL
//! compilers take only the second.

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
pub use check::{AttrRef, CheckedFilter, FilterScope, Node, Rel, Test, TextOp, check_filter};
pub use eval::{matches, matches_element};
pub use parser::{
    MAX_NESTING, MAX_TREE_DEPTH, parse_filter, parse_filter_nested, parse_patch_path,
};
