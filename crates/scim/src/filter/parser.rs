//! Recursive-descent parser for filters (RFC 7644 §3.4.2.2) and PATCH paths
//! (RFC 7644 §3.5.2).
//!
//! Precedence is `not`/parentheses > `and` > `or`; `and` and `or` associate to
//! the left. Keywords and operators are case-insensitive. Tolerances for real
//! clients:
//! - any run of whitespace between tokens;
//! - `emails[type eq "work"].value eq "x"` (Entra ID) reads as
//!   `emails[type eq "work" and value eq "x"]`;
//! - `not` without parentheses negates the next primary expression. A word
//!   `not` followed by an operator, `pr` or `[` is an attribute named `not`.
//!
//! Parenthesis, `not` and bracket nesting is limited to [`MAX_NESTING`] and the
//! depth of the resulting tree (long `and`/`or` chains included) to
//! [`MAX_TREE_DEPTH`], so that neither this parser nor the code that walks the
//! tree recursively can overflow the stack.

use serde_json::Number;

use super::ast::{CompValue, CompareOp, Filter, PatchPath};
use super::lexer::{Tok, Token, char_pos, tokenize};
use crate::error::ScimError;
use crate::path::{AttrPath, is_attr_name};

/// How deep parentheses, `not` and value filters may nest.
pub const MAX_NESTING: usize = 64;
/// How deep the syntax tree may be, counting every `and`/`or` of a chain.
/// Long `or` lists of ids are real, but so are recursive walkers with small
/// stacks (test threads get 2 MiB), so this stays well below where a debug
/// build of a recursive walk overflows.
pub const MAX_TREE_DEPTH: usize = 500;

/// Parses a `filter` query parameter. Errors are `invalidFilter` and name the
/// 1-based character position.
pub fn parse_filter(text: &str) -> Result<Filter, ScimError> {
    parse_filter_nested(text, MAX_NESTING)
}

/// [`parse_filter`] with a lower nesting limit (a server setting); limits
/// above [`MAX_NESTING`] are read as [`MAX_NESTING`], which protects the stack.
pub fn parse_filter_nested(text: &str, max_nesting: usize) -> Result<Filter, ScimError> {
    let mut p = Parser::new(text, ScimError::invalid_filter)?;
    p.max_nesting = max_nesting.min(MAX_NESTING);
    if p.toks.is_empty() {
        return Err(ScimError::invalid_filter("the filter is empty"));
    }
    let (f, _) = p.or_expr(0, false)?;
    p.expect_end()?;
    Ok(f)
}

/// Parses a PATCH operation `path`: `attrPath` or
/// `attrPath "[" valFilter "]" ["." subAttr]`. Errors are `invalidPath`.
pub fn parse_patch_path(text: &str) -> Result<PatchPath, ScimError> {
    let mut p = Parser::new(text, ScimError::invalid_path)?;
    let path = p.attr_path("an attribute path", false)?;
    let mut filter = None;
    let mut path = path;
    if p.peek_is(&Tok::LBracket) {
        if path.sub_attr.is_some() {
            return Err(p.err_here("\"[\" only after an attribute without sub-attribute"));
        }
        p.pos += 1;
        let (f, _) = p.or_expr(1, true)?;
        p.expect(&Tok::RBracket, "\"]\"")?;
        filter = Some(f);
        if let Some(sub) = p.dot_sub_attr()? {
            path.sub_attr = Some(sub);
        }
    }
    p.expect_end()?;
    Ok(PatchPath { path, filter })
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token<'a>>,
    pos: usize,
    err: fn(String) -> ScimError,
    max_nesting: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, err: fn(String) -> ScimError) -> Result<Self, ScimError> {
        Ok(Parser {
            text,
            toks: tokenize(text, err)?,
            pos: 0,
            err,
            max_nesting: MAX_NESTING,
        })
    }

    fn peek(&self) -> Option<&Token<'a>> {
        self.toks.get(self.pos)
    }

    fn peek_is(&self, tok: &Tok<'_>) -> bool {
        self.peek().is_some_and(|t| &t.tok == tok)
    }

    fn peek_word(&self, offset: usize) -> Option<&'a str> {
        match self.toks.get(self.pos + offset).map(|t| &t.tok) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        self.peek_word(0)
            .is_some_and(|w| w.eq_ignore_ascii_case(kw))
    }

    /// `expected X at position N, found Y` for the current token.
    fn err_here(&self, expected: &str) -> ScimError {
        let (pos, found) = match self.peek() {
            Some(t) => (char_pos(self.text, t.start), format!("{:?}", t.raw)),
            None => (
                char_pos(self.text, self.text.len()),
                "the end of the text".to_owned(),
            ),
        };
        (self.err)(format!(
            "expected {expected} at position {pos}, found {found}"
        ))
    }

    fn expect(&mut self, tok: &Tok<'_>, what: &str) -> Result<(), ScimError> {
        if self.peek_is(tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err_here(what))
        }
    }

    fn expect_end(&self) -> Result<(), ScimError> {
        match self.peek() {
            None => Ok(()),
            Some(t) if t.tok == Tok::RParen => Err(self.err_here("no \")\" without \"(\"")),
            Some(_) => Err(self.err_here("the end of the text")),
        }
    }

    fn check_depth(&self, nesting: usize, depth: usize) -> Result<(), ScimError> {
        if nesting > self.max_nesting {
            Err(self.err_here(&format!(
                "at most {} levels of nesting (max_filter_depth)",
                self.max_nesting
            )))
        } else if depth > MAX_TREE_DEPTH {
            Err(self.err_here(&format!("a filter at most {MAX_TREE_DEPTH} levels deep")))
        } else {
            Ok(())
        }
    }

    // Every expression function returns the depth of the tree it built, so the
    // limits hold without walking the tree afterwards.

    fn or_expr(&mut self, nesting: usize, inner: bool) -> Result<(Filter, usize), ScimError> {
        let (mut left, mut depth) = self.and_expr(nesting, inner)?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let (right, d) = self.and_expr(nesting, inner)?;
            depth = depth.max(d) + 1;
            self.check_depth(nesting, depth)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    fn and_expr(&mut self, nesting: usize, inner: bool) -> Result<(Filter, usize), ScimError> {
        let (mut left, mut depth) = self.unary(nesting, inner)?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let (right, d) = self.unary(nesting, inner)?;
            depth = depth.max(d) + 1;
            self.check_depth(nesting, depth)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    fn unary(&mut self, nesting: usize, inner: bool) -> Result<(Filter, usize), ScimError> {
        if self.peek_keyword("not") && !self.not_is_attribute() {
            self.pos += 1;
            self.check_depth(nesting + 1, 1)?;
            let (f, d) = if self.peek_is(&Tok::LParen) {
                self.parenthesised(nesting + 1, inner)?
            } else {
                self.unary(nesting + 1, inner)?
            };
            self.check_depth(nesting, d + 1)?;
            return Ok((Filter::Not(Box::new(f)), d + 1));
        }
        if self.peek_is(&Tok::LParen) {
            self.check_depth(nesting + 1, 1)?;
            return self.parenthesised(nesting + 1, inner);
        }
        self.attr_expr(nesting, inner)
    }

    /// `not eq "x"`, `not pr` and `not[...]` are about an attribute called `not`.
    fn not_is_attribute(&self) -> bool {
        match self.toks.get(self.pos + 1).map(|t| &t.tok) {
            Some(Tok::LBracket) => true,
            Some(Tok::Word(w)) => w.eq_ignore_ascii_case("pr") || CompareOp::parse(w).is_some(),
            _ => false,
        }
    }

    fn parenthesised(&mut self, nesting: usize, inner: bool) -> Result<(Filter, usize), ScimError> {
        self.expect(&Tok::LParen, "\"(\"")?;
        let r = self.or_expr(nesting, inner)?;
        self.expect(&Tok::RParen, "\")\" or a logical operator")?;
        Ok(r)
    }

    /// `attrPath "pr"`, `attrPath op value`, or `attrPath "[" valFilter "]"`
    /// optionally followed by Entra's `.subAttr op value`.
    fn attr_expr(&mut self, nesting: usize, inner: bool) -> Result<(Filter, usize), ScimError> {
        let what = if inner {
            "a sub-attribute name"
        } else {
            "an attribute path"
        };
        let path = self.attr_path(what, inner)?;
        if !self.peek_is(&Tok::LBracket) {
            return Ok((self.condition(path)?, 1));
        }
        if inner {
            return Err(
                self.err_here("a comparison operator or \"pr\" (value filters do not nest)")
            );
        }
        if path.sub_attr.is_some() {
            return Err(self.err_here("a comparison operator or \"pr\" after a sub-attribute"));
        }
        self.pos += 1;
        self.check_depth(nesting + 1, 1)?;
        let (mut f, mut depth) = self.or_expr(nesting + 1, true)?;
        self.expect(&Tok::RBracket, "\"]\" or a logical operator")?;
        if let Some(sub) = self.dot_sub_attr()? {
            let extra = self.condition(AttrPath::new(&sub))?;
            f = Filter::And(Box::new(f), Box::new(extra));
            depth += 1;
        }
        depth += 1;
        self.check_depth(nesting, depth)?;
        Ok((
            Filter::ValuePath {
                path,
                filter: Box::new(f),
            },
            depth,
        ))
    }

    /// The `.subAttr` that may follow `]`.
    fn dot_sub_attr(&mut self) -> Result<Option<String>, ScimError> {
        match self.peek_word(0) {
            Some(w) if w.starts_with('.') => {
                let name = &w[1..];
                if !is_attr_name(name) {
                    return Err(self.err_here("a sub-attribute name after \".\""));
                }
                self.pos += 1;
                Ok(Some(name.to_owned()))
            }
            _ => Ok(None),
        }
    }

    fn attr_path(&mut self, what: &str, inner: bool) -> Result<AttrPath, ScimError> {
        let Some(word) = self.peek_word(0) else {
            return Err(self.err_here(what));
        };
        // Names and URNs are ASCII; checking first also keeps non-ASCII text
        // away from `split_urn`, which slices at byte 4.
        if !word.is_ascii() {
            return Err(self.err_here(what));
        }
        let path = match AttrPath::parse(word) {
            Ok(p) if !inner || (p.uri.is_none() && p.sub_attr.is_none()) => p,
            _ => return Err(self.err_here(what)),
        };
        self.pos += 1;
        Ok(path)
    }

    /// What follows an attribute path: `pr` or an operator and a value.
    fn condition(&mut self, path: AttrPath) -> Result<Filter, ScimError> {
        let word = self.peek_word(0);
        if word.is_some_and(|w| w.eq_ignore_ascii_case("pr")) {
            self.pos += 1;
            return Ok(Filter::Present(path));
        }
        let Some(op) = word.and_then(CompareOp::parse) else {
            return Err(self.err_here("a comparison operator or \"pr\""));
        };
        self.pos += 1;
        let value = self.comp_value()?;
        Ok(Filter::Compare { path, op, value })
    }

    fn comp_value(&mut self) -> Result<CompValue, ScimError> {
        const WHAT: &str = "a string, number, true, false or null";
        let value = match self.peek().map(|t| &t.tok) {
            Some(Tok::Str(s)) => CompValue::String(s.clone()),
            Some(Tok::Word(w)) => {
                if w.eq_ignore_ascii_case("true") {
                    CompValue::Bool(true)
                } else if w.eq_ignore_ascii_case("false") {
                    CompValue::Bool(false)
                } else if w.eq_ignore_ascii_case("null") {
                    CompValue::Null
                } else {
                    match parse_number(w) {
                        Some(n) => CompValue::Number(n),
                        None => return Err(self.err_here(WHAT)),
                    }
                }
            }
            _ => return Err(self.err_here(WHAT)),
        };
        self.pos += 1;
        Ok(value)
    }
}

/// A JSON number, nothing more. serde_json checks the grammar; fractions are
/// then re-read with the standard library, whose rounding is exact, so that
/// a printed filter parses back to the same `f64`.
fn parse_number(w: &str) -> Option<Number> {
    let first = w.chars().next()?;
    if first != '-' && !first.is_ascii_digit() {
        return None;
    }
    let n = serde_json::from_str::<Number>(w).ok()?;
    if n.is_f64() {
        Number::from_f64(w.parse::<f64>().ok()?)
    } else {
        Some(n)
    }
}
