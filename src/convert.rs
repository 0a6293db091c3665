//! `confd-rs convert`: confd's Go templates as minijinja, for good. The text printed is exactly
//! what confd-rs runs when it loads the Go template, so a converted template renders the same.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::ConvertArgs;
use crate::config::{self, ConfigError};
use crate::render::{gotmpl, KeySpace, Syntax, Template};
use crate::store::file::FileStore;

/// Every template converted (and, with --data, rendered the same both ways).
pub const OK: u8 = 0;
/// A template is not valid Go, or (with --data) renders differently or fails.
pub const NOT_CONVERTED: u8 = crate::error::TEMPLATE;

/// One template to convert, and the conf.d files whose `syntax` follows it on --write.
struct Job {
    src: PathBuf,
    resources: Vec<PathBuf>,
}

pub fn main(args: &ConvertArgs) -> Result<u8, ConfigError> {
    let jobs = jobs(args)?;
    let data = match args.data.is_empty() {
        true => None,
        false => Some(keys(&args.data)?),
    };
    let mut out = std::io::stdout().lock();
    let mut code = OK;
    let several = jobs.len() > 1;
    for job in &jobs {
        let shown = job.src.display();
        let source = fs::read_to_string(&job.src).map_err(|error| ConfigError::Read {
            path: job.src.clone(),
            error,
        })?;
        let jinja = match gotmpl::translate(&source) {
            Ok(t) => t.source,
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{shown}:{}:{}: not convertible: {}",
                    e.line, e.col, e.message
                );
                code = NOT_CONVERTED;
                continue;
            }
        };
        if let Some(kvs) = &data {
            match compare(&job.src, &source, &jinja, kvs) {
                Ok(()) => {
                    let _ = writeln!(out, "{shown}: identical");
                }
                Err(why) => {
                    let _ = writeln!(out, "{shown}: {why}");
                    code = NOT_CONVERTED;
                    continue;
                }
            }
        }
        if args.write {
            write(job, &source, &jinja)?;
            let _ = writeln!(
                out,
                "{shown}: converted ({shown}.orig keeps the Go original)"
            );
            for r in &job.resources {
                let _ = writeln!(out, "{}: syntax = \"jinja\"", r.display());
            }
        } else if data.is_none() {
            if several {
                let _ = writeln!(out, "==> {shown} <==");
            }
            let _ = out.write_all(jinja.as_bytes());
        }
    }
    Ok(code)
}

/// The templates named, or every Go template the confdir's resources use.
fn jobs(args: &ConvertArgs) -> Result<Vec<Job>, ConfigError> {
    let mut jobs: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    let confdir = args.confdir.clone().or_else(|| {
        // A file under CONFDIR/templates/ belongs to that confdir.
        let first = args.files.first()?;
        let dir = first.parent()?;
        (dir.file_name()? == "templates").then(|| dir.parent().map(Path::to_path_buf))?
    });
    let resources = match &confdir {
        Some(dir) if dir.join("conf.d").is_dir() => resources(dir)?,
        Some(dir) if args.confdir.is_some() => {
            return Err(ConfigError::Invalid {
                path: dir.clone(),
                message: "no conf.d/ here: expected a confd confdir".into(),
            })
        }
        _ => Vec::new(),
    };
    if args.files.is_empty() {
        for (src, toml, syntax) in &resources {
            if *syntax == Syntax::Go {
                jobs.entry(src.clone()).or_default().insert(toml.clone());
            }
        }
    }
    for f in &args.files {
        let canonical = fs::canonicalize(f).map_err(|error| ConfigError::Read {
            path: f.clone(),
            error,
        })?;
        let users = resources
            .iter()
            .filter(|(src, _, _)| fs::canonicalize(src).is_ok_and(|s| s == canonical))
            .map(|(_, toml, _)| toml.clone());
        jobs.entry(f.clone()).or_default().extend(users);
    }
    Ok(jobs
        .into_iter()
        .map(|(src, resources)| Job {
            src,
            resources: resources.into_iter().collect(),
        })
        .collect())
}

/// (template, conf.d file, syntax) of each resource of a confdir, as the daemon would load it.
fn resources(confdir: &Path) -> Result<Vec<(PathBuf, PathBuf, Syntax)>, ConfigError> {
    let cli = crate::cli::parse(
        ["confd-rs", "--confdir"]
            .into_iter()
            .map(Into::into)
            .chain([confdir.as_os_str().to_owned()]),
    )
    .map_err(|e| ConfigError::Flag(e.to_string()))?;
    let (resources, broken) = config::resources(&cli)?;
    if let Some(b) = broken.first() {
        return Err(ConfigError::Flag(format!("{}: {}", b.name, b.reason)));
    }
    Ok(resources
        .into_iter()
        .map(|r| (r.src, PathBuf::from(r.name), r.syntax))
        .collect())
}

fn keys(files: &[PathBuf]) -> Result<Arc<BTreeMap<String, String>>, ConfigError> {
    let snap = FileStore::new(files.to_vec())
        .snapshot(&[String::new()])
        .map_err(|e| ConfigError::Flag(format!("--data: {e}")))?;
    Ok(Arc::new(snap.kvs().clone()))
}

/// Renders the Go original and the Jinja version over the same keys; the first difference.
fn compare(
    src: &Path,
    go: &str,
    jinja: &str,
    kvs: &Arc<BTreeMap<String, String>>,
) -> Result<(), String> {
    let name = src.display().to_string();
    let render = |text: &str, syntax: Syntax| {
        Template::compile_as(&name, text, syntax)
            .and_then(|t| t.render(KeySpace::all(kvs.clone()), &[]))
            .map(|r| r.text)
    };
    let (a, b) = match (render(go, Syntax::Go), render(jinja, Syntax::Jinja)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) => return Err(format!("Go original fails: {e}")),
        (_, Err(e)) => return Err(format!("Jinja version fails: {e}")),
    };
    if a == b {
        return Ok(());
    }
    let (n, (x, y)) = a
        .split_inclusive('\n')
        .chain(std::iter::repeat(""))
        .zip(b.split_inclusive('\n').chain(std::iter::repeat("")))
        .enumerate()
        .find(|(_, (x, y))| x != y)
        .unwrap_or((0, ("", "")));
    Err(format!(
        "differs at line {}: go {:?} jinja {:?}",
        n + 1,
        x.trim_end_matches('\n'),
        y.trim_end_matches('\n')
    ))
}

/// Replaces the template (the original kept as FILE.orig) and marks its resources Jinja.
fn write(job: &Job, go: &str, jinja: &str) -> Result<(), ConfigError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| ConfigError::Read { path, error }
    };
    let orig = PathBuf::from(format!("{}.orig", job.src.display()));
    fs::write(&orig, go).map_err(io(&orig))?;
    replace(&job.src, jinja).map_err(io(&job.src))?;
    for toml in &job.resources {
        let text = fs::read_to_string(toml).map_err(io(toml))?;
        replace(toml, &with_syntax(&text)).map_err(io(toml))?;
    }
    Ok(())
}

/// Writes a sibling and renames it over `path`: readers see the old file or the new one.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    if let Ok(meta) = fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A conf.d file with `syntax = "jinja"` in its [template] table (replacing any `syntax`).
fn with_syntax(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 20);
    let mut in_template = false;
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            if in_template && !done {
                out.push_str("syntax = \"jinja\"\n");
                done = true;
            }
            in_template = t == "[template]";
        }
        if in_template && !done && t.split('=').next().is_some_and(|k| k.trim() == "syntax") {
            out.push_str("syntax = \"jinja\"\n");
            done = true;
            continue;
        }
        out.push_str(line);
    }
    if in_template && !done {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("syntax = \"jinja\"\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_syntax;

    #[test]
    fn syntax_is_set_in_the_template_table_only() {
        assert_eq!(
            with_syntax("[template]\nsrc = \"a\"\n"),
            "[template]\nsrc = \"a\"\nsyntax = \"jinja\"\n"
        );
        assert_eq!(
            with_syntax("[template]\nsyntax = \"go\"\nsrc = \"a\"\n"),
            "[template]\nsyntax = \"jinja\"\nsrc = \"a\"\n"
        );
        assert_eq!(
            with_syntax("[template]\nsrc = \"a\"\n[other]\nsyntax = 1\n"),
            "[template]\nsrc = \"a\"\nsyntax = \"jinja\"\n[other]\nsyntax = 1\n"
        );
    }
}
