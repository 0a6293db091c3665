//! Templates: minijinja with confd's functions. Rendering is pure: it reads only the keys it is
//! given (plus the few confd functions that ask the host: getenv, datetime, fileExists, lookup*).

mod dns;
mod funcs;
mod glob;
pub mod gotmpl;
mod hostport;

use std::sync::Arc;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::ValueKind;
use minijinja::{escape_formatter, AutoEscape, Environment, Error, UndefinedBehavior, Value};

pub use funcs::KeySpace;
pub use glob::{BadPattern, Pattern};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// `at` is `line` for Jinja, `line:column` for Go (as Go's own errors say).
    #[error("{template}:{at}: {message}")]
    Template {
        template: String,
        at: String,
        message: String,
    },
}

/// What a printed value must be: anything, or safe in nginx config (see
/// `hostport::nginx_breaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueCheck {
    None,
    Nginx,
}

/// The template language of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Syntax {
    Jinja,
    /// confd's Go text/template, translated to Jinja at load.
    Go,
}

impl Syntax {
    /// The language of a template whose resource does not say: Go when it parses as Go and
    /// its text holds no Jinja tag (`{%`, `{#`), otherwise Jinja.
    pub fn detect(source: &str) -> Syntax {
        if gotmpl::looks_like_go(source) {
            Syntax::Go
        } else {
            Syntax::Jinja
        }
    }
}

/// A rendered file, the values it left out (each message names its key), the servers each
/// `hostports` glob found, and how many keys it read.
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    pub dropped: Vec<String>,
    pub servers: std::collections::BTreeMap<String, usize>,
    pub keys_read: usize,
}

/// A template checked at load, with its own environment (its own formatter). It keeps its
/// Jinja text, not the compiled program: minijinja reserves ~12 KB in every compiled template
/// (room for 256 instructions and 128 line and span records) and never shrinks it, which for
/// 1,000 per-app templates was most of a run's heap and a tenth of its CPU in page faults.
/// A render compiles the text again (microseconds for an nginx upstream template), on memory
/// the previous render freed.
pub struct Template {
    env: Environment<'static>,
    name: String,
    jinja: String,
    /// For a Go template: where each construct of the Jinja text came from.
    go: Option<gotmpl::Translation>,
}

/// The variable through which confd's key functions find the keys of the render in progress.
const KEYS: &str = "__confd_keys";

impl Template {
    /// Parses a Jinja `source`; a syntax error names the template and line.
    pub fn compile(name: &str, source: &str) -> Result<Template, RenderError> {
        Template::compile_as(name, source, Syntax::Jinja)
    }

    /// Parses `source` as `syntax`; a Go template is translated to Jinja first. A syntax error
    /// names the template and line (and column, for Go).
    pub fn compile_as(name: &str, source: &str, syntax: Syntax) -> Result<Template, RenderError> {
        let (jinja, go) = match syntax {
            Syntax::Jinja => (source.to_owned(), None),
            Syntax::Go => {
                let mut t = gotmpl::translate(source).map_err(|e| RenderError::Template {
                    template: name.to_owned(),
                    at: format!("{}:{}", e.line, e.col),
                    message: e.message.replace('\n', " "),
                })?;
                // The environment keeps the Jinja text; the template keeps only the positions.
                (std::mem::take(&mut t.source), Some(t))
            }
        };
        let t = Template {
            env: base().clone(),
            name: name.to_owned(),
            jinja,
            go,
        };
        t.compiled().map_err(|e| t.error(&e))?;
        Ok(t)
    }

    fn compiled(&self) -> Result<minijinja::Template<'_, '_>, Error> {
        // The environment lends itself for as long as the text is borrowed.
        let env: &Environment<'_> = &self.env;
        env.template_from_named_str(&self.name, &self.jinja)
    }

    /// Makes every value the template prints pass `check`: with `Nginx`, a value that could
    /// end or open an nginx directive, block, comment or string fails the render, naming the
    /// key it came from. Template text and `|safe` values are not checked.
    pub fn checking(mut self, check: ValueCheck) -> Template {
        if check == ValueCheck::Nginx {
            self.env.set_formatter(|out, state, value| {
                if let Some(bad) = value
                    .as_str()
                    .filter(|_| !value.is_safe())
                    .and_then(|s| hostport::nginx_breaker(s).map(|c| (s, c)))
                {
                    return Err(unsafe_value(state, bad.0, bad.1));
                }
                go_style(out, state, value)
            });
        }
        self
    }

    /// Renders over `keys`, with `vars` as template variables (a fan-out unit's `dir` and
    /// `path`). Does no store IO and writes nothing.
    pub fn render(&self, keys: KeySpace, vars: &[(&str, &str)]) -> Result<Rendered, RenderError> {
        let keys = Arc::new(keys);
        let mut ctx: std::collections::BTreeMap<&str, Value> =
            vars.iter().map(|(k, v)| (*k, Value::from(*v))).collect();
        ctx.insert("dynamic", Value::from(keys.balanced()));
        ctx.insert(KEYS, Value::from_dyn_object(keys.clone()));
        if !vars.is_empty() {
            // A Go template reads a fan-out unit's variables as `.dir` and `.path`.
            let root: std::collections::BTreeMap<String, Value> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect();
            ctx.insert("go_root", Value::from(root));
        }
        let text = self
            .compiled()
            .and_then(|t| t.render(ctx))
            .map_err(|e| self.error(&e))?;
        Ok(Rendered {
            text,
            dropped: keys.take_dropped(),
            servers: keys.take_servers(),
            keys_read: keys.keys_read(),
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
        env.set_formatter(go_style);
        if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
            env.set_syntax(syntax);
        }
        funcs::register(&mut env);
        gotmpl::register(&mut env);
        env
    })
}

/// Go's templates print booleans as true/false, and config files expect that spelling.
fn go_style(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), Error> {
    if value.kind() == ValueKind::Bool {
        out.write_str(if value.is_true() { "true" } else { "false" })
            .map_err(Error::from)
    } else if let Some(s) = value
        .as_str()
        .filter(|_| *state.auto_escape() == AutoEscape::None)
    {
        // What escape_formatter prints for a string when nothing is escaped, without going
        // through `fmt` (one call per printed value: 100,000 in a big render).
        out.write_str(s).map_err(Error::from)
    } else {
        escape_formatter(out, state, value)
    }
}

/// The error for a printed value nginx would read as syntax, naming the key that holds it.
fn unsafe_value(state: &minijinja::State, value: &str, bad: char) -> Error {
    let key = funcs::key_holding(state, value)
        .map(|k| format!(" (key {k:?})"))
        .unwrap_or_default();
    let shown: String = value.chars().take(80).collect();
    Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!(
            "value {shown:?}{key} has {bad:?}, which could end or open an nginx directive, block, \
             comment or string; the file is not written (value_check = \"none\" for a file that is not nginx config)"
        ),
    )
}

impl Template {
    /// One line: template name, position, and what went wrong (with the cause a function
    /// gave). A Go template's position is the Go construct's, not the translation's.
    fn error(&self, e: &minijinja::Error) -> RenderError {
        let go_pos = self.go.as_ref().and_then(|t| t.go_pos(e.range()?.start));
        let at = match (go_pos, &self.go) {
            (Some(p), _) => format!("{}:{}", p.line, p.col),
            (None, Some(_)) => "1:1".to_owned(),
            (None, None) => e.line().unwrap_or(0).to_string(),
        };
        RenderError::Template {
            template: e.name().unwrap_or(&self.name).to_owned(),
            at,
            message: message(e),
        }
    }
}

/// What went wrong, with the causes a function gave, on one line.
fn message(e: &minijinja::Error) -> String {
    let mut message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message.replace('\n', " ")
}

#[cfg(test)]
mod tests;
