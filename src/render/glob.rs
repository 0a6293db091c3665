//! Go's `path.Match`, which confd's `gets`/`getvs` use: `*` and `?` never match `/`, classes are
//! `[abc]`, `[a-z]`, `[^a-z]`, and `\` escapes.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern {0:?}")]
pub struct BadPattern(pub String);

enum Token {
    Star,
    Any,
    Lit(char),
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A parsed pattern: parsing first means a malformed pattern is an error even when no key is
/// tested, as in Go.
pub struct Pattern {
    /// The tokens after the literal prefix.
    tokens: Vec<Token>,
    /// The literal text before the first wildcard: every match starts with it.
    pub literal_prefix: String,
}

impl Pattern {
    pub fn new(pattern: &str) -> Result<Pattern, BadPattern> {
        let bad = || BadPattern(pattern.to_owned());
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => Token::Lit(chars.next().ok_or_else(bad)?),
                '[' => {
                    let negated = chars.next_if_eq(&'^').is_some();
                    let mut ranges = Vec::new();
                    loop {
                        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
                            break;
                        }
                        let lo = class_char(&mut chars).ok_or_else(bad)?;
                        let hi = if chars.next_if_eq(&'-').is_some() {
                            class_char(&mut chars).ok_or_else(bad)?
                        } else {
                            lo
                        };
                        ranges.push((lo, hi));
                    }
                    Token::Class { negated, ranges }
                }
                c => Token::Lit(c),
            });
        }
        let literal_prefix: String = tokens
            .iter()
            .map_while(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        tokens.drain(..literal_prefix.chars().count());
        Ok(Pattern {
            tokens,
            literal_prefix,
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        let Some(rest) = name.strip_prefix(self.literal_prefix.as_str()) else {
            return false;
        };
        match self.tokens.as_slice() {
            [] => rest.is_empty(),
            // `dir/*`, the common case: one more path segment.
            [Token::Star] => !rest.contains('/'),
            tokens => match_tokens(tokens, &rest.chars().collect::<Vec<_>>()),
        }
    }
}

fn class_char(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<char> {
    match chars.next()? {
        '-' | ']' => None,
        '\\' => chars.next(),
        c => Some(c),
    }
}

fn match_tokens(tokens: &[Token], name: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return name.is_empty();
    };
    match first {
        Token::Star => {
            let span = name.iter().position(|c| *c == '/').unwrap_or(name.len());
            (0..=span).any(|skip| match_tokens(rest, &name[skip..]))
        }
        Token::Any => name.first().is_some_and(|c| *c != '/') && match_tokens(rest, &name[1..]),
        Token::Lit(c) => name.first() == Some(c) && match_tokens(rest, &name[1..]),
        Token::Class { negated, ranges } => {
            name.first().is_some_and(|c| {
                let hit = ranges.iter().any(|(lo, hi)| lo <= c && c <= hi);
                hit != *negated
            }) && match_tokens(rest, &name[1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p).expect("valid pattern").matches(s)
    }

    // Cases from Go's path/match_test.go.
    #[test]
    fn matches_like_go_path_match() {
        assert!(m("abc", "abc"));
        assert!(m("*", "abc"));
        assert!(m("*c", "abc"));
        assert!(!m("a*", "ab/c"));
        assert!(m("a*/b", "abc/b"));
        assert!(!m("a*/b", "a/c/b"));
        assert!(m("a*b*c*d*e*/f", "axbxcxdxe/f"));
        assert!(!m("a*b*c*d*e*/f", "axbxcxdxe/xxx/f"));
        assert!(m("ab[c]", "abc"));
        assert!(m("ab[b-d]", "abc"));
        assert!(!m("ab[e-g]", "abc"));
        assert!(!m("ab[^c]", "abc"));
        assert!(m("ab[^e-g]", "abc"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "ab"));
        assert!(m("a?b", "a☺b"));
        assert!(!m("a?b", "a/b"));
        assert!(m("[\\]a]", "]"));
        assert!(m("[\\-]", "-"));
        assert!(m("*x", "xxx"));
        assert!(m("/search_PRE/*", "/search_PRE/172.18.100.31-86"));
        assert!(!m("/search_PRE/*", "/search_PRE/a/b"));
    }

    #[test]
    fn malformed_patterns_are_errors() {
        for p in [
            "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[a-b-c]", "\\", "a[\\",
        ] {
            assert!(Pattern::new(p).is_err(), "{p:?} should be a bad pattern");
        }
    }

    #[test]
    fn literal_prefix_bounds_the_scan() {
        assert_eq!(
            Pattern::new("/svc/web*/x").expect("valid").literal_prefix,
            "/svc/web"
        );
        assert_eq!(Pattern::new("*").expect("valid").literal_prefix, "");
    }
}
