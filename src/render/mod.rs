//! Templates: minijinja with confd's functions. Rendering is pure: it reads only the keys it is
//! given (plus the few confd functions that ask the host: getenv, datetime, fileExists, lookup*).

mod dns;
mod funcs;
mod glob;
mod hostport;

use std::sync::Arc;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::ValueKind;
use minijinja::{escape_formatter, AutoEscape, Environment, Error, UndefinedBehavior, Value};

pub use funcs::KeySpace;
pub use glob::{BadPattern, Pattern};

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

/// A template parsed once, with its own environment (Go templates will want their own
/// formatter and undefined-value rules): rendering never parses.
pub struct Template {
    env: Environment<'static>,
    name: String,
}

/// The variable through which confd's key functions find the keys of the render in progress.
const KEYS: &str = "__confd_keys";

impl Template {
    /// Parses `source`; a syntax error names the template and line.
    pub fn compile(name: &str, source: &str) -> Result<Template, RenderError> {
        let mut env = base().clone();
        env.add_template_owned(name.to_owned(), source.to_owned())
            .map_err(|e| error(name, &e))?;
        Ok(Template {
            env,
            name: name.to_owned(),
        })
    }

    /// Renders over `keys`, with `vars` as template variables (a fan-out unit's `dir` and
    /// `path`). Does no store IO and writes nothing.
    pub fn render(&self, keys: KeySpace, vars: &[(&str, &str)]) -> Result<Rendered, RenderError> {
        let keys = Arc::new(keys);
        let mut ctx: std::collections::BTreeMap<&str, Value> =
            vars.iter().map(|(k, v)| (*k, Value::from(*v))).collect();
        ctx.insert(KEYS, Value::from_dyn_object(keys.clone()));
        let text = self
            .env
            .get_template(&self.name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| error(&self.name, &e))?;
        Ok(Rendered {
            text,
            dropped: keys.take_dropped(),
        })
    }
}

/// The environment every template starts from, with confd's functions; built once.
fn base() -> &'static Environment<'static> {
    static BASE: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
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
        funcs::register(&mut env);
        env
    })
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
