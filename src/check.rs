//! `confd-rs check`: validates a confdir without etcd, for the CI of the repository that holds
//! it. Every problem is reported in one run, one line each; the exit code is that of the first
//! (2 configuration, 4 template, 5 check_cmd), 0 when there is none.

use std::path::{Path, PathBuf};

use crate::apply::Plan;
use crate::cli::{CheckArgs, Cli};
use crate::error::{self, Error};
use crate::pipeline::{self, Prepared};
use crate::store::file::FileStore;

/// One problem, and the exit code it stands for.
struct Problem {
    code: u8,
    line: String,
}

pub fn main(cli: &Cli, args: &CheckArgs) -> Result<u8, Error> {
    let cfg = crate::config::load(&for_check(cli, args))?;
    let dests: Vec<Problem> = cfg
        .resources
        .iter()
        .filter_map(|r| {
            let why = unwritable(&r.dest)?;
            Some(Problem {
                code: error::CONFIG,
                line: format!("{}: template.dest {}: {why}", r.name, r.dest.display()),
            })
        })
        .chain(cfg.resources.iter().filter_map(|r| {
            Some(Problem {
                code: error::CONFIG,
                line: r.balancer_missing()?,
            })
        }))
        .collect();
    let p = Prepared::new(cfg);
    let mut problems: Vec<Problem> = p
        .unusable
        .iter()
        .map(|u| Problem {
            code: u.exit_code(),
            line: format!("{}: {}", u.name, u.reason),
        })
        .collect();
    problems.extend(dests);
    if !args.data.is_empty() {
        problems.extend(render_and_check(&p, &args.data)?);
    }
    for problem in &problems {
        println!("{}", problem.line);
    }
    println!(
        "{} resources, {} problems",
        p.cfg.resources.len() + p.unusable.len(),
        problems.len()
    );
    Ok(problems.first().map_or(error::OK, |p| p.code))
}

/// The command line of a one-shot run over the `--data` key files (without them no store is
/// read, but a file backend still needs a file to name).
fn for_check(cli: &Cli, args: &CheckArgs) -> Cli {
    let mut cli = cli.clone();
    cli.command = None;
    cli.onetime = Some(true);
    if args.confdir.is_some() {
        cli.confdir = args.confdir.clone();
    }
    if args.data.is_empty() {
        cli.files = vec![PathBuf::from("/dev/null")];
    } else {
        cli.backend = Some("file".into());
        cli.files = args.data.clone();
    }
    cli
}

/// Why nothing could be written beside `dest`, if so (its directory, or for a fan-out
/// pattern the directory of its files).
fn unwritable(dest: &Path) -> Option<String> {
    let dir = dest.parent().filter(|d| !d.as_os_str().is_empty())?;
    if !dir.is_dir() {
        return Some(format!("directory {} does not exist", dir.display()));
    }
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK)
        .err()
        .map(|e| format!("directory {} is not writable: {e}", dir.display()))
}

/// Renders every unit over the key files and runs each check_cmd that names the staged file
/// on a stage of its render in a scratch directory.
fn render_and_check(p: &Prepared, data: &[PathBuf]) -> Result<Vec<Problem>, Error> {
    let snap = FileStore::new(data.to_vec()).snapshot(&p.cfg.prefixes())?;
    let scratch = tempfile::tempdir().map_err(Error::host("creating a scratch directory"))?;
    let rt = crate::runtime().map_err(Error::host("starting the async runtime"))?;
    let mut problems = Vec::new();
    for (i, u) in p.units(&snap).into_iter().enumerate() {
        let Some(res) = pipeline::resource_of(p, &u) else {
            continue;
        };
        let text = match pipeline::plan(p, &u, &snap) {
            Ok((Plan::Write(w), _)) => w.text().map(str::to_owned),
            Ok((Plan::Unchanged, _)) => continue,
            Err(e) => {
                problems.push(Problem {
                    code: e.exit_code(),
                    line: format!("{u}: {e}"),
                });
                continue;
            }
        };
        let Some(text) = text else { continue };
        let stage = scratch.path().join(format!("{i}.stage"));
        let Some(cmd) = pipeline::check_of_stage(res, &stage) else {
            continue;
        };
        if let Err(e) = std::fs::write(&stage, &text) {
            return Err(Error::host("writing a stage to check")(e));
        }
        if let Err(e) = rt.block_on(crate::command::run(&cmd, p.cfg.command_timeout)) {
            problems.push(Problem {
                code: error::APPLY,
                line: format!("{u}: check_cmd refuses the render: {e}"),
            });
        }
    }
    Ok(problems)
}
