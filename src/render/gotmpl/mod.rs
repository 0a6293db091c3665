//! confd's Go text/template templates, run by translating them into minijinja once, at load.
//! Everything after the translation (compiling, rendering, key functions) is the Jinja path.

pub mod fmt;
mod parse;
mod runtime;
mod translate;

pub use parse::{ParseError, Pos};
pub use runtime::register;
pub use translate::Translation;

/// The Jinja equivalent of a Go template, or where and why it does not parse as Go.
pub fn translate(source: &str) -> Result<Translation, ParseError> {
    parse::parse(source).map(|tree| translate::translate(&tree))
}

/// Whether `source` reads as a Go template: it parses as one, and its text has no Jinja tag
/// (`{%`, `{#`) that would make it a Jinja template whose `{{ }}` happen to be valid Go.
pub fn looks_like_go(source: &str) -> bool {
    // The text before the first action is plain text whatever follows: a Jinja tag there
    // settles it without parsing (the per-app layout's 1,000 templates all start so).
    let head = &source[..source.find("{{").unwrap_or(source.len())];
    if head.contains("{%") || head.contains("{#") {
        return false;
    }
    parse::parse(source).is_ok_and(|tree| !tree.has_jinja_tags())
}
