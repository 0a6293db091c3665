//! Templates: minijinja with confd's functions. Rendering is pure: it reads only the keys it is
//! given (plus the few confd functions that ask the host: getenv, datetime, fileExists, lookup*).

mod dns;
mod funcs;
mod glob;
mod hostport;

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::ValueKind;
use minijinja::{escape_formatter, AutoEscape, Environment, Error, UndefinedBehavior};

use funcs::KeySpace;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{template}:{line}: {message}")]
    Template {
        template: String,
        line: usize,
        message: String,
    },
}

/// A rendered file, and the values it left out (each message names its key).
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    pub dropped: Vec<String>,
}

/// Parses a template so a syntax error is reported at load time, not at the first change.
pub fn check_syntax(name: &str, source: &str) -> Result<(), RenderError> {
    let env = environment(KeySpace::new(BTreeMap::new()), Arc::default());
    env.template_from_named_str(name, source)
        .map(|_| ())
        .map_err(|e| error(name, &e))
}

/// Renders `source` over `keys` (relative to the resource's prefix).
pub fn render(
    name: &str,
    source: &str,
    keys: BTreeMap<String, String>,
) -> Result<Rendered, RenderError> {
    let dropped: funcs::Dropped = Arc::default();
    let env = environment(KeySpace::new(keys), dropped.clone());
    let text = env
        .template_from_named_str(name, source)
        .and_then(|t| t.render(()))
        .map_err(|e| error(name, &e))?;
    drop(env);
    let dropped = Arc::try_unwrap(dropped)
        .map(|m| m.into_inner().unwrap_or_default())
        .unwrap_or_default();
    Ok(Rendered { text, dropped })
}

fn environment(keys: KeySpace, dropped: funcs::Dropped) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // confd never escapes; a template named *.html must not start to.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // Go's templates print booleans as true/false, and config files expect that spelling.
    env.set_formatter(|out, state, value| {
        if value.kind() == ValueKind::Bool {
            out.write_str(if value.is_true() { "true" } else { "false" })
                .map_err(Error::from)
        } else {
            escape_formatter(out, state, value)
        }
    });
    if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
        env.set_syntax(syntax);
    }
    funcs::register(&mut env, Arc::new(keys), dropped);
    env
}

/// One line: template name, line, and what went wrong (with the cause a function gave).
fn error(name: &str, e: &minijinja::Error) -> RenderError {
    let mut message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    RenderError::Template {
        template: e.name().unwrap_or(name).to_owned(),
        line: e.line().unwrap_or(0),
        message: message.replace('\n', " "),
    }
}

#[cfg(test)]
mod tests;
