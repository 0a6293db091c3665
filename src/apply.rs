//! The only code that touches dest files: compare → stage → check → swap (or swap → check →
//! roll back) for one resource. Reloads are the caller's, so one batch reloads each command once.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::NamedTempFile;

use crate::command::{self, CommandError};
use crate::config::Resource;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{dest}: cannot read the current file: {error}")]
    Read {
        dest: PathBuf,
        error: std::io::Error,
    },
    #[error("{dest}: cannot stage the new file in its directory: {error}")]
    Stage {
        dest: PathBuf,
        error: std::io::Error,
    },
    #[error("{dest}: cannot install the staged file: {error}")]
    Swap {
        dest: PathBuf,
        error: std::io::Error,
    },
    #[error("{dest}: check_cmd failed, previous file kept: {error}")]
    Check { dest: PathBuf, error: CommandError },
    #[error(
        "{dest}: check_cmd failed ({check}) and the previous file could not be put back: {error}"
    )]
    Restore {
        dest: PathBuf,
        check: CommandError,
        error: std::io::Error,
    },
    #[error("reload_cmd failed: {0}")]
    Reload(CommandError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Installed,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Write files but run no check_cmd (confd's `-sync-only`).
    pub sync_only: bool,
    pub command_timeout: Duration,
}

/// Owner and permission bits of a dest file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The dest file as it is now: its bytes and metadata, or nothing.
struct Current {
    bytes: Vec<u8>,
    meta: Meta,
}

fn read_current(dest: &Path) -> Result<Option<Current>, ApplyError> {
    let err = |error| ApplyError::Read {
        dest: dest.to_owned(),
        error,
    };
    let md = match fs::metadata(dest) {
        Ok(md) => md,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let bytes = fs::read(dest).map_err(err)?;
    Ok(Some(Current {
        bytes,
        meta: Meta {
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
        },
    }))
}

/// Unset mode/uid/gid keep what the dest has (or 0644 and our own ids for a new file).
fn desired_meta(res: &Resource, current: Option<&Current>) -> Meta {
    let cur = current.map(|c| c.meta);
    Meta {
        mode: res.mode.or(cur.map(|m| m.mode)).unwrap_or(0o644),
        uid: res
            .uid
            .or(cur.map(|m| m.uid))
            .unwrap_or_else(|| nix::unistd::geteuid().as_raw()),
        gid: res
            .gid
            .or(cur.map(|m| m.gid))
            .unwrap_or_else(|| nix::unistd::getegid().as_raw()),
    }
}

/// What `--noop` prints: a unified diff from dest to the rendered text, or None when equal.
pub fn diff(res: &Resource, text: &str) -> Result<Option<String>, ApplyError> {
    let current = read_current(&res.dest)?;
    let old = current
        .as_ref()
        .map(|c| String::from_utf8_lossy(&c.bytes).into_owned())
        .unwrap_or_default();
    if current.is_some() && old == text {
        return Ok(None);
    }
    let dest = res.dest.display().to_string();
    let diff = similar::TextDiff::from_lines(old.as_str(), text)
        .unified_diff()
        .header(&dest, &format!("{dest} (rendered)"))
        .to_string();
    Ok(Some(diff))
}

/// Installs `text` as `res.dest` unless it is already there. With a check_cmd that names the
/// staged file (`{{src}}`) the stage is checked before the swap; otherwise (nginx -t checks the
/// whole config that includes dest) the new file is swapped in, checked, and on failure the
/// previous content is put back.
pub async fn install(res: &Resource, text: &str, opts: Options) -> Result<Outcome, ApplyError> {
    let current = read_current(&res.dest)?;
    let meta = desired_meta(res, current.as_ref());
    if current
        .as_ref()
        .is_some_and(|c| c.bytes == text.as_bytes() && c.meta == meta)
    {
        return Ok(Outcome::Unchanged);
    }
    let stage = stage(&res.dest, text.as_bytes(), meta)?;
    let check = res.check_cmd.as_deref().filter(|_| !opts.sync_only);
    match check.map(|cmd| (cmd, with_src(cmd, stage.path()))) {
        Some((_, Some(cmd))) => {
            if let Err(error) = command::run(&cmd, opts.command_timeout).await {
                discard(stage, res.keep_stage_file);
                return Err(ApplyError::Check {
                    dest: res.dest.clone(),
                    error,
                });
            }
            swap(stage, &res.dest)?;
        }
        Some((cmd, None)) => {
            swap(stage, &res.dest)?;
            if let Err(check) = command::run(cmd, opts.command_timeout).await {
                return Err(match restore(&res.dest, current) {
                    Ok(()) => ApplyError::Check {
                        dest: res.dest.clone(),
                        error: check,
                    },
                    Err(error) => ApplyError::Restore {
                        dest: res.dest.clone(),
                        check,
                        error,
                    },
                });
            }
        }
        None => swap(stage, &res.dest)?,
    }
    Ok(Outcome::Installed)
}

/// confd's check_cmd names the staged file as `{{.src}}`; `{{src}}` is the Jinja spelling.
fn with_src(cmd: &str, stage: &Path) -> Option<String> {
    let path = stage.display().to_string();
    let mut out = cmd.to_owned();
    for form in ["{{.src}}", "{{ .src }}", "{{src}}", "{{ src }}"] {
        out = out.replace(form, &path);
    }
    (out != cmd).then_some(out)
}

/// Writes a stage file beside dest (same filesystem, so the swap is a rename), with its final
/// mode and owner, and flushes it to disk.
fn stage(dest: &Path, bytes: &[u8], meta: Meta) -> Result<NamedTempFile, ApplyError> {
    let err = |error| ApplyError::Stage {
        dest: dest.to_owned(),
        error,
    };
    let dir = parent(dest);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".stage")
        .tempfile_in(dir)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    let f = file.as_file();
    f.set_permissions(fs::Permissions::from_mode(meta.mode))
        .map_err(err)?;
    nix::unistd::fchown(f, Some(meta.uid.into()), Some(meta.gid.into()))
        .map_err(|e| err(e.into()))?;
    f.sync_all().map_err(err)?;
    Ok(file)
}

/// Renames the stage over dest and syncs the directory. A dest that is a bind-mounted single file
/// cannot be renamed over (EBUSY): then, as confd does, it is written in place.
fn swap(stage: NamedTempFile, dest: &Path) -> Result<(), ApplyError> {
    let err = |error| ApplyError::Swap {
        dest: dest.to_owned(),
        error,
    };
    match stage.persist(dest) {
        Ok(_) => sync_dir(parent(dest)).map_err(err),
        Err(e) if e.error.raw_os_error() == Some(nix::libc::EBUSY) => {
            tracing::warn!(dest = %dest.display(), "rename failed with EBUSY (bind mount?); writing in place");
            let bytes = fs::read(e.file.path()).map_err(err)?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(dest)
                .map_err(err)?;
            f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(err)
        }
        Err(e) => Err(err(e.error)),
    }
}

/// Puts the previous dest back (byte for byte, same mode and owner), or removes a dest that did
/// not exist before.
fn restore(dest: &Path, previous: Option<Current>) -> Result<(), std::io::Error> {
    let io = |e: ApplyError| match e {
        ApplyError::Stage { error, .. } | ApplyError::Swap { error, .. } => error,
        other => std::io::Error::other(other.to_string()),
    };
    match previous {
        Some(prev) => swap(stage(dest, &prev.bytes, prev.meta).map_err(io)?, dest).map_err(io),
        None => fs::remove_file(dest).and_then(|_| sync_dir(parent(dest))),
    }
}

fn discard(stage: NamedTempFile, keep: bool) {
    if keep {
        match stage.keep() {
            Ok((_, path)) => tracing::info!(stage = %path.display(), "keeping stage file"),
            Err(e) => tracing::warn!("could not keep stage file: {e}"),
        }
    }
}

fn parent(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
