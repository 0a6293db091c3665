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
        // The text before the first special character is literal as it stands: only the rest
        // needs tokens (`hostports("/" ~ svc ~ "/*")` runs once per service).
        let plain = pattern.find(['*', '?', '[', '\\']).unwrap_or(pattern.len());
        let mut literal_prefix = pattern[..plain].to_owned();
        let mut tokens = Vec::new();
        let mut chars = pattern[plain..].chars().peekable();
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
        // Escaped characters right after the plain text are literal too.
        let escaped = tokens
            .iter()
            .map_while(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .count();
        literal_prefix.extend(tokens.drain(..escaped).filter_map(|t| match t {
            Token::Lit(c) => Some(c),
            _ => None,
        }));
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

/// Whether `name` matches `tokens`. Each (token, position) pair is tried at most once (failures
/// are remembered), so patterns with many `*` stay polynomial: plain backtracking is exponential
/// on `a*a*a*a*…b` (found by the glob fuzz target).
fn match_tokens(tokens: &[Token], name: &[char]) -> bool {
    let mut failed = std::collections::HashSet::new();
    match_from(tokens, name, 0, 0, &mut failed)
}

fn match_from(
    tokens: &[Token],
    name: &[char],
    ti: usize,
    ni: usize,
    failed: &mut std::collections::HashSet<(usize, usize)>,
) -> bool {
    if failed.contains(&(ti, ni)) {
        return false;
    }
    let rest = &name[ni..];
    let ok = match tokens.get(ti) {
        None => rest.is_empty(),
        Some(Token::Star) => {
            let span = rest.iter().position(|c| *c == '/').unwrap_or(rest.len());
            (0..=span).any(|skip| match_from(tokens, name, ti + 1, ni + skip, failed))
        }
        Some(Token::Any) => {
            rest.first().is_some_and(|c| *c != '/')
                && match_from(tokens, name, ti + 1, ni + 1, failed)
        }
        Some(Token::Lit(c)) => {
            rest.first() == Some(c) && match_from(tokens, name, ti + 1, ni + 1, failed)
        }
        Some(Token::Class { negated, ranges }) => {
            rest.first().is_some_and(|c| {
                let hit = ranges.iter().any(|(lo, hi)| lo <= c && c <= hi);
                hit != *negated
            }) && match_from(tokens, name, ti + 1, ni + 1, failed)
        }
    };
    if !ok {
        failed.insert((ti, ni));
    }
    ok
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
    fn many_stars_do_not_take_exponential_time() {
        // The glob fuzz target's timeout: plain backtracking took seconds here.
        let pattern = "a*".repeat(30) + "b";
        let start = std::time::Instant::now();
        assert!(!m(&pattern, &"a".repeat(60)));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
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
