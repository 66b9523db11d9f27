//! Tokens of the filter language, each with the byte offset it starts at so
//! that every error can name a position.

use crate::error::ScimError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok<'a> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// Anything else up to whitespace, a bracket, a parenthesis or a quote:
    /// attribute paths, operators, keywords and numbers. Telling them apart
    /// needs the grammar, so the parser does it.
    Word(&'a str),
    /// A JSON string literal, already decoded.
    Str(String),
}

#[derive(Debug, Clone)]
pub(super) struct Token<'a> {
    pub tok: Tok<'a>,
    pub start: usize,
    /// The token as written, for error messages.
    pub raw: &'a str,
}

/// The 1-based character position of a byte offset, as users count.
pub(super) fn char_pos(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(0, |s| s.chars().count()) + 1
}

fn is_space(c: char) -> bool {
    // Clients send double spaces and tabs; line breaks cost nothing to accept.
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_delimiter(c: char) -> bool {
    is_space(c) || matches!(c, '(' | ')' | '[' | ']' | '"')
}

pub(super) fn tokenize(
    text: &str,
    err: fn(String) -> ScimError,
) -> Result<Vec<Token<'_>>, ScimError> {
    let mut out = Vec::new();
    let mut it = text.char_indices().peekable();
    while let Some(&(start, c)) = it.peek() {
        if is_space(c) {
            it.next();
            continue;
        }
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            _ => None,
        };
        if let Some(tok) = single {
            it.next();
            out.push(Token {
                tok,
                start,
                raw: &text[start..start + 1],
            });
            continue;
        }
        let end = if c == '"' {
            string_end(text, start).ok_or_else(|| {
                err(format!(
                    "unterminated string starting at position {}",
                    char_pos(text, start)
                ))
            })?
        } else {
            text[start..]
                .char_indices()
                .find(|&(_, c)| is_delimiter(c))
                .map_or(text.len(), |(i, _)| start + i)
        };
        let raw = &text[start..end];
        let tok = if c == '"' {
            let s = serde_json::from_str::<String>(raw).map_err(|e| {
                err(format!(
                    "invalid string at position {}: {e}",
                    char_pos(text, start)
                ))
            })?;
            Tok::Str(s)
        } else {
            Tok::Word(raw)
        };
        out.push(Token { tok, start, raw });
        while it.peek().is_some_and(|&(i, _)| i < end) {
            it.next();
        }
    }
    Ok(out)
}

/// The byte offset just past the closing quote of the string opening at `start`.
fn string_end(text: &str, start: usize) -> Option<usize> {
    let mut chars = text[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return Some(start + 1 + i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        tokenize(s, ScimError::invalid_filter)
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn splits_words_strings_and_brackets() {
        assert_eq!(
            toks(r#"emails[type  eq "w\"o]rk"].value"#),
            vec![
                Tok::Word("emails"),
                Tok::LBracket,
                Tok::Word("type"),
                Tok::Word("eq"),
                Tok::Str("w\"o]rk".into()),
                Tok::RBracket,
                Tok::Word(".value"),
            ]
        );
        assert_eq!(
            toks("not(a\tpr)"),
            vec![
                Tok::Word("not"),
                Tok::LParen,
                Tok::Word("a"),
                Tok::Word("pr"),
                Tok::RParen
            ]
        );
    }

    #[test]
    fn positions_count_characters() {
        let e = tokenize("ä eq \"x", ScimError::invalid_filter).unwrap_err();
        assert!(e.detail.contains("position 6"), "{}", e.detail);
        assert_eq!(char_pos("äb", 2), 2);
    }
}
