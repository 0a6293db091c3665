//! The only code that touches dest files, as steps a pass can stop between:
//!
//! ```text
//! plan (the one comparison) ─► Plan::Write ─► stage ─► Staged ─► swap ─► Swapped ─► commit
//!   └─► Plan::Unchanged                          └─► discard            └─► rollback
//! ```
//!
//! `--noop` and the real run share [`plan`], so they always agree. Between swap and commit the
//! previous file is kept as a hard link (`.NAME.confd-prev`; `.NAME.confd-new` marks a dest that
//! did not exist), so a crash at any point leaves dest either the old file or a new one that
//! [`recover`] puts back at the next start, to be rendered and checked again. Checks and reloads
//! are the caller's: this module runs no command.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::command::CommandError;

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
    #[error("{dest}: the previous file could not be put back: {error}")]
    Restore {
        dest: PathBuf,
        error: std::io::Error,
    },
    #[error("reload_cmd failed: {0}")]
    Reload(CommandError),
    #[error("reload not confirmed: {0}; the previous files are back")]
    Unconfirmed(crate::procs::Unconfirmed),
}

/// Where and how one rendered text is installed: a dest file with its wanted mode and owner
/// (unset: keep what the file has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub dest: PathBuf,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub keep_stage_file: bool,
    /// What counts as the same content.
    pub same: Sameness,
}

/// When a render is the same as dest's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sameness {
    #[default]
    Bytes,
    /// Byte for byte but for the revisions balancer directives carry: a dynamic upstream file is
    /// rewritten only when something but its version changed (see `dynamic::layout`).
    BalancerVersionsAside,
}

impl Sameness {
    fn same(self, old: &[u8], new: &str) -> bool {
        match self {
            Sameness::Bytes => old == new.as_bytes(),
            Sameness::BalancerVersionsAside => crate::dynamic::layout::same_but_versions(old, new),
        }
    }
}

/// Owner and permission bits of a dest file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The dest file as it is now.
#[derive(Debug, Clone)]
struct Current {
    bytes: Vec<u8>,
    meta: Meta,
}

/// What installing a text would do.
#[derive(Debug)]
pub enum Plan {
    /// Content, mode and owner are already as wanted: nothing is written or reloaded.
    Unchanged,
    Write(Write),
}

/// A text that differs from dest (in content, mode or owner). Cloned to stage it again after a
/// rollback (batch validation puts a file back and tries it again with others).
#[derive(Debug, Clone)]
pub struct Write {
    target: Target,
    previous: Option<Current>,
    /// None: dest is to be removed.
    text: Option<String>,
    meta: Meta,
}

/// The comparison, the only one: content, mode, uid and gid.
pub fn plan(target: &Target, text: String) -> Result<Plan, ApplyError> {
    let previous = read_current(&target.dest)?;
    if previous.is_none() && !parent(&target.dest).is_dir() {
        // What staging would hit; said now, so --noop reports it too.
        return Err(ApplyError::Stage {
            dest: target.dest.clone(),
            error: std::io::Error::new(
                ErrorKind::NotFound,
                format!(
                    "directory {} does not exist",
                    parent(&target.dest).display()
                ),
            ),
        });
    }
    let meta = wanted_meta(target, previous.as_ref());
    if previous
        .as_ref()
        .is_some_and(|c| target.same.same(&c.bytes, &text) && c.meta == meta)
    {
        return Ok(Plan::Unchanged);
    }
    Ok(Plan::Write(Write {
        target: target.clone(),
        previous,
        text: Some(text),
        meta,
    }))
}

/// Removing dest (its service is gone): a write of nothing, checked and rolled back like any
/// other. Unchanged when there is no dest.
pub fn plan_removal(target: &Target) -> Result<Plan, ApplyError> {
    Ok(match read_current(&target.dest)? {
        None => Plan::Unchanged,
        Some(previous) => Plan::Write(Write {
            target: target.clone(),
            meta: previous.meta,
            previous: Some(previous),
            text: None,
        }),
    })
}

impl Write {
    /// The text to install (None: dest is to be removed).
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// Dest's content now, if it exists and is text.
    pub fn previous_text(&self) -> Option<&str> {
        let previous = self.previous.as_ref()?;
        std::str::from_utf8(&previous.bytes).ok()
    }

    /// What `--noop` prints: a unified diff of the content, and a line for a mode or owner change.
    pub fn diff(&self) -> String {
        let dest = self.target.dest.display().to_string();
        let old = self
            .previous
            .as_ref()
            .map(|c| String::from_utf8_lossy(&c.bytes).into_owned())
            .unwrap_or_default();
        let mut out = String::new();
        if let Some(prev) = self.previous.as_ref().filter(|p| p.meta != self.meta) {
            let (a, b) = (prev.meta, self.meta);
            out.push_str(&format!(
                "{dest}: mode {:04o} -> {:04o}, owner {}:{} -> {}:{}\n",
                a.mode, b.mode, a.uid, a.gid, b.uid, b.gid
            ));
        }
        let (new, label) = match &self.text {
            Some(text) => (text.as_str(), format!("{dest} (rendered)")),
            None => ("", format!("{dest} (removed)")),
        };
        if self.previous.is_none() || old != new || self.text.is_none() {
            out.push_str(
                &similar::TextDiff::from_lines(old.as_str(), new)
                    .unified_diff()
                    .header(&dest, &label)
                    .to_string(),
            );
        }
        out
    }

    pub fn is_removal(&self) -> bool {
        self.text.is_none()
    }

    /// What puts dest back as it was before this write (for a reload that is not confirmed).
    pub fn undo(&self) -> Undo {
        Undo {
            target: self.target.clone(),
            previous: self.previous.clone(),
        }
    }

    /// Writes a stage file beside dest (same filesystem, so the swap is a rename), with its
    /// final mode and owner, flushed to disk.
    pub fn stage(self) -> Result<Staged, ApplyError> {
        self.stage_with(Sync::Now)
    }

    fn stage_with(self, sync: Sync) -> Result<Staged, ApplyError> {
        let dest = &self.target.dest;
        let err = |error| ApplyError::Stage {
            dest: dest.clone(),
            error,
        };
        let file = match &self.text {
            Some(text) => Some(stage_file(dest, text.as_bytes(), self.meta, sync).map_err(err)?),
            None => None,
        };
        Ok(Staged { write: self, file })
    }
}

/// A dest's previous bytes, mode and owner (or that it did not exist), to put back after it was
/// replaced and committed.
#[derive(Debug, Clone)]
pub struct Undo {
    target: Target,
    previous: Option<Current>,
}

impl Undo {
    pub fn dest(&self) -> &Path {
        &self.target.dest
    }

    /// Puts the previous file back by rename (or removes a file that was new).
    pub fn apply(self) -> Result<(), ApplyError> {
        let dest = &self.target.dest;
        let err = |error| ApplyError::Restore {
            dest: dest.clone(),
            error,
        };
        match self.previous {
            Some(prev) => stage_file(dest, &prev.bytes, prev.meta, Sync::Now)
                .and_then(|stage| install(stage, dest, Sync::Now))
                .map_err(err),
            None => remove_if_present(dest)
                .and_then(|()| sync_dir(parent(dest)))
                .map_err(err),
        }
    }
}

/// A new file written beside dest, not yet in place (none for a removal).
pub struct Staged {
    write: Write,
    file: Option<NamedTempFile>,
}

impl Staged {
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(NamedTempFile::path)
    }

    /// Drops the stage file, or keeps it when the resource asks (`keep_stage_file`).
    pub fn discard(self) {
        let Some(file) = self.file else { return };
        if self.write.target.keep_stage_file {
            match file.keep() {
                Ok((_, path)) => tracing::info!(stage = %path.display(), "keeping stage file"),
                Err(e) => tracing::warn!("could not keep stage file: {e}"),
            }
        }
    }

    /// Puts the stage in place of dest by rename, keeping the previous file (or a marker that
    /// there was none) until [`Swapped::commit`].
    pub fn swap(self) -> Result<Swapped, ApplyError> {
        self.swap_with(Sync::Now)
    }

    fn swap_with(self, sync: Sync) -> Result<Swapped, ApplyError> {
        let dest = self.write.target.dest.clone();
        let err = |error| ApplyError::Swap {
            dest: dest.clone(),
            error,
        };
        let keep = Keep::of(&dest);
        let kept = match &self.write.previous {
            // A dest on another mount (a bind-mounted single file) cannot be linked: then the
            // previous bytes are kept in memory only.
            Some(_) => keep.link_previous().map_err(err)?,
            None => keep.mark_new().map_err(err)?,
        };
        match self.file {
            Some(file) => install(file, &dest, sync),
            None => fs::remove_file(&dest).and_then(|()| match sync {
                Sync::Now => sync_dir(parent(&dest)),
                Sync::Later => Ok(()),
            }),
        }
        .map_err(err)?;
        Ok(Swapped {
            dest,
            previous: self.write.previous,
            keep,
            kept,
        })
    }
}

/// A new file in place, the previous one still kept.
pub struct Swapped {
    dest: PathBuf,
    previous: Option<Current>,
    keep: Keep,
    /// Whether the previous file (or the "was new" marker) is on disk.
    kept: bool,
}

impl Swapped {
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The new file stays: forget the previous one.
    pub fn commit(self) {
        if self.kept {
            self.keep.forget();
        }
    }

    /// Puts the previous file back byte for byte, with its mode and owner, or removes a dest
    /// that did not exist before.
    pub fn rollback(self) -> Result<(), ApplyError> {
        self.rollback_with(Sync::Now)
    }

    fn rollback_with(self, sync: Sync) -> Result<(), ApplyError> {
        let err = |error| ApplyError::Restore {
            dest: self.dest.clone(),
            error,
        };
        let dir = parent(&self.dest);
        match (&self.previous, self.kept) {
            (Some(_), true) => fs::rename(&self.keep.prev, &self.dest),
            (Some(prev), false) => stage_file(&self.dest, &prev.bytes, prev.meta, Sync::Now)
                .and_then(|f| install(f, &self.dest, Sync::Now)),
            (None, _) => remove_if_present(&self.dest).and_then(|()| self.keep.forget_marker()),
        }
        .and_then(|()| match sync {
            Sync::Now => sync_dir(dir),
            Sync::Later => Ok(()),
        })
        .map_err(err)
    }
}

/// Stages and swaps many writes with one data sync for all their stage files and one sync per
/// directory after the renames, instead of two fsyncs per file: a fresh host writes a thousand.
/// Each result is that write's.
pub fn swap_all(writes: Vec<Write>) -> Vec<Result<Swapped, ApplyError>> {
    let staged: Vec<_> = writes
        .into_iter()
        .map(|w| w.stage_with(Sync::Later))
        .collect();
    let dirs = directories(
        staged
            .iter()
            .flatten()
            .map(|s| s.write.target.dest.as_path()),
    );
    let synced = dirs.iter().try_for_each(|d| sync_filesystem(d));
    let swapped: Vec<_> = staged
        .into_iter()
        .map(|s| {
            let s = s?;
            if let Err(error) = &synced {
                return Err(ApplyError::Stage {
                    dest: s.write.target.dest.clone(),
                    error: std::io::Error::new(error.kind(), error.to_string()),
                });
            }
            s.swap_with(Sync::Later)
        })
        .collect();
    let failed = sync_dirs(dirs);
    swapped
        .into_iter()
        .map(|swapped| {
            let s = swapped?;
            dir_synced(&failed, &s.dest)?;
            Ok(s)
        })
        .collect()
}

/// Rolls many swaps back with one sync per directory. Each result is that swap's.
pub fn rollback_all(swapped: Vec<Swapped>) -> Vec<Result<(), ApplyError>> {
    let dests: Vec<PathBuf> = swapped.iter().map(|s| s.dest.clone()).collect();
    let rolled: Vec<_> = swapped
        .into_iter()
        .map(|s| s.rollback_with(Sync::Later))
        .collect();
    let failed = sync_dirs(directories(dests.iter().map(PathBuf::as_path)));
    dests
        .iter()
        .zip(rolled)
        .map(|(dest, rolled)| rolled.and_then(|()| dir_synced(&failed, dest)))
        .collect()
}

fn directories<'a>(dests: impl Iterator<Item = &'a Path>) -> BTreeSet<PathBuf> {
    dests.map(|d| parent(d).to_owned()).collect()
}

/// Syncs each directory once; returns those whose sync failed, with why.
fn sync_dirs(dirs: BTreeSet<PathBuf>) -> BTreeMap<PathBuf, String> {
    dirs.into_iter()
        .filter_map(|d| sync_dir(&d).err().map(|e| (d, e.to_string())))
        .collect()
}

fn dir_synced(failed: &BTreeMap<PathBuf, String>, dest: &Path) -> Result<(), ApplyError> {
    match failed.get(parent(dest)) {
        None => Ok(()),
        Some(e) => Err(ApplyError::Swap {
            dest: dest.to_owned(),
            error: std::io::Error::other(e.clone()),
        }),
    }
}

/// Flushes every file written on the filesystem that holds `dir` (the stage files of a batch).
fn sync_filesystem(dir: &Path) -> std::io::Result<()> {
    let d = File::open(dir)?;
    nix::unistd::syncfs(&d).map_err(std::io::Error::from)
}

/// At start, for every dest: a swap that was never committed (the process died between swap
/// and check) is undone, so its file is rendered and checked again; stage files that earlier
/// runs left (`.NAME.XXXXXX.stage`, for these NAMEs only) are removed. Each directory is read
/// once. Returns the dests whose swap was undone; a failure is logged and skipped.
pub fn recover<'a>(dests: impl IntoIterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut by_dir: BTreeMap<&Path, BTreeSet<String>> = BTreeMap::new();
    for dest in dests {
        by_dir
            .entry(parent(dest))
            .or_default()
            .insert(file_name(dest));
    }
    let mut undone = Vec::new();
    for (dir, names) in by_dir {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some((name, what)) = leftover(&file, &names) else {
                continue;
            };
            let dest = dir.join(name);
            let keep = Keep::of(&dest);
            let result = match what {
                Leftover::Stage => {
                    tracing::info!(stage = %entry.path().display(), "removing a stage file left by an earlier run");
                    remove_if_present(&entry.path())
                }
                Leftover::Previous => {
                    tracing::warn!(dest = %dest.display(), "an earlier run stopped before checking this file: putting the previous one back");
                    keep.restore()
                }
                Leftover::WasNew => {
                    tracing::warn!(dest = %dest.display(), "an earlier run stopped before checking this new file: removing it");
                    remove_if_present(&dest).and_then(|()| keep.forget_marker())
                }
            };
            match result {
                Ok(()) if what != Leftover::Stage => undone.push(dest),
                Ok(()) => {}
                Err(e) => tracing::error!(dest = %dest.display(), "cannot recover: {e}"),
            }
        }
    }
    undone
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leftover {
    Stage,
    Previous,
    WasNew,
}

/// Which dest (among `names`) a hidden file in its directory was left for, and what it is.
fn leftover<'a>(file: &'a str, names: &BTreeSet<String>) -> Option<(&'a str, Leftover)> {
    let rest = file.strip_prefix('.')?;
    let (name, what) = if let Some(stage) = rest.strip_suffix(".stage") {
        let (name, random) = stage.rsplit_once('.')?;
        let ours = random.len() == 6 && random.chars().all(|c| c.is_ascii_alphanumeric());
        (name, ours.then_some(Leftover::Stage)?)
    } else if let Some(name) = rest.strip_suffix(".confd-prev") {
        (name, Leftover::Previous)
    } else {
        (rest.strip_suffix(".confd-new")?, Leftover::WasNew)
    };
    names.contains(name).then_some((name, what))
}

/// What a fan-out resource wrote into one directory of dests: a list beside them
/// (`.<dest pattern>.confd-owned`), so a file whose directory vanished while confd-rs was not
/// running is still known, and nothing it did not write is ever removed.
pub struct Owned {
    path: PathBuf,
}

impl Owned {
    /// The list for dests named by `pattern` (a dest path holding a placeholder, which the
    /// list's own name spells with `_`).
    pub fn of(pattern: &Path) -> Owned {
        let name: String = file_name(pattern)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Owned {
            path: parent(pattern).join(format!(".{name}.confd-owned")),
        }
    }

    pub fn read(&self) -> BTreeSet<String> {
        fs::read_to_string(&self.path)
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Replaces the list (stage + rename, like a dest).
    pub fn write(&self, names: &BTreeSet<String>) -> std::io::Result<()> {
        let text: String = names.iter().map(|n| format!("{n}\n")).collect();
        let meta = Meta {
            mode: 0o644,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        };
        install(
            stage_file(&self.path, text.as_bytes(), meta, Sync::Now)?,
            &self.path,
            Sync::Now,
        )
    }
}

/// Marks dest's reload as owed: its file is in place but nginx may still run the old one.
/// Kept on disk, so a restarted daemon still owes it.
pub fn owe_reload(dest: &Path) -> std::io::Result<()> {
    File::create(sibling(dest, "confd-reload-owed")).map(drop)
}

/// The owed reload of dest ran.
pub fn reload_done(dest: &Path) -> std::io::Result<()> {
    remove_if_present(&sibling(dest, "confd-reload-owed"))
}

pub fn reload_owed(dest: &Path) -> bool {
    sibling(dest, "confd-reload-owed").exists()
}

/// The files that keep what a swap replaced: `.NAME.confd-prev` (a hard link to the previous
/// dest) or `.NAME.confd-new` (dest did not exist).
struct Keep {
    dest: PathBuf,
    prev: PathBuf,
    new: PathBuf,
}

impl Keep {
    fn of(dest: &Path) -> Keep {
        Keep {
            dest: dest.to_owned(),
            prev: sibling(dest, "confd-prev"),
            new: sibling(dest, "confd-new"),
        }
    }

    fn link_previous(&self) -> std::io::Result<bool> {
        remove_if_present(&self.prev)?;
        match fs::hard_link(&self.dest, &self.prev) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Empty: only its name matters, and the directory sync after the rename makes it durable
    /// with the rename (a journal keeps the two in order).
    fn mark_new(&self) -> std::io::Result<bool> {
        File::create(&self.new)?;
        Ok(true)
    }

    fn restore(&self) -> std::io::Result<()> {
        fs::rename(&self.prev, &self.dest)?;
        sync_dir(parent(&self.dest))
    }

    fn forget(&self) {
        let _ = remove_if_present(&self.prev).and_then(|()| self.forget_marker());
    }

    fn forget_marker(&self) -> std::io::Result<()> {
        remove_if_present(&self.new)
    }
}

/// `.NAME.what` beside dest: hidden, and never matched by an `include *.conf`.
fn sibling(dest: &Path, what: &str) -> PathBuf {
    parent(dest).join(format!(".{}.{what}", file_name(dest)))
}

fn file_name(dest: &Path) -> String {
    dest.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_current(dest: &Path) -> Result<Option<Current>, ApplyError> {
    let err = |error| ApplyError::Read {
        dest: dest.to_owned(),
        error,
    };
    let file = match File::open(dest) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let md = file.metadata().map_err(err)?;
    let mut bytes = Vec::with_capacity(usize::try_from(md.len()).unwrap_or(0));
    // Sized from the metadata already read: `File`'s own read_to_end would stat and seek again.
    file.take(u64::MAX).read_to_end(&mut bytes).map_err(err)?;
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
fn wanted_meta(t: &Target, current: Option<&Current>) -> Meta {
    let cur = current.map(|c| c.meta);
    Meta {
        mode: t.mode.or(cur.map(|m| m.mode)).unwrap_or(0o644),
        uid: t
            .uid
            .or(cur.map(|m| m.uid))
            .unwrap_or_else(|| nix::unistd::geteuid().as_raw()),
        gid: t
            .gid
            .or(cur.map(|m| m.gid))
            .unwrap_or_else(|| nix::unistd::getegid().as_raw()),
    }
}

/// Whether a step syncs to disk itself, or leaves it to one sync for a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    Now,
    Later,
}

fn stage_file(dest: &Path, bytes: &[u8], meta: Meta, sync: Sync) -> std::io::Result<NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{}.", file_name(dest)))
        .suffix(".stage")
        .tempfile_in(parent(dest))?;
    file.write_all(bytes)?;
    let f = file.as_file();
    f.set_permissions(fs::Permissions::from_mode(meta.mode))?;
    nix::unistd::fchown(f, Some(meta.uid.into()), Some(meta.gid.into()))?;
    if sync == Sync::Now {
        f.sync_all()?;
    }
    Ok(file)
}

/// Renames the stage over dest and syncs the directory. A dest that is a bind-mounted single file
/// cannot be renamed over (EBUSY): then, as confd does, it is written in place.
fn install(stage: NamedTempFile, dest: &Path, sync: Sync) -> std::io::Result<()> {
    match stage.persist(dest) {
        Ok(_) if sync == Sync::Now => sync_dir(parent(dest)),
        Ok(_) => Ok(()),
        Err(e) if e.error.raw_os_error() == Some(nix::libc::EBUSY) => {
            tracing::warn!(dest = %dest.display(), "rename failed with EBUSY (bind mount?); writing in place");
            let bytes = fs::read(e.file.path())?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(dest)?;
            f.write_all(&bytes).and_then(|_| f.sync_all())
        }
        Err(e) => Err(e.error),
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dir: &Path, mode: Option<u32>) -> Target {
        Target {
            dest: dir.join("up.conf"),
            mode,
            uid: None,
            gid: None,
            keep_stage_file: false,
            same: Sameness::Bytes,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn write(plan: Plan) -> Write {
        match plan {
            Plan::Write(w) => w,
            Plan::Unchanged => panic!("expected a write"),
        }
    }

    #[test]
    fn a_mode_only_change_is_a_write_that_noop_shows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = target(dir.path(), Some(0o644));
        fs::write(&t.dest, "same\n").expect("dest");
        fs::set_permissions(&t.dest, fs::Permissions::from_mode(0o600)).expect("chmod");
        let w = write(plan(&t, "same\n".into()).expect("plan"));
        assert!(w.diff().contains("mode 0600 -> 0644"), "{}", w.diff());
        assert!(!w.diff().contains("@@"), "no content hunk: {}", w.diff());
        w.stage().expect("stage").swap().expect("swap").commit();
        assert!(matches!(
            plan(&t, "same\n".into()).expect("plan"),
            Plan::Unchanged
        ));
    }

    #[test]
    fn rollback_puts_the_previous_file_back_byte_for_byte_with_its_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = target(dir.path(), None);
        fs::write(&t.dest, "old\n").expect("dest");
        fs::set_permissions(&t.dest, fs::Permissions::from_mode(0o640)).expect("chmod");
        let swapped = write(plan(&t, "new\n".into()).expect("plan"))
            .stage()
            .expect("stage")
            .swap()
            .expect("swap");
        assert_eq!(fs::read_to_string(&t.dest).expect("read"), "new\n");
        swapped.rollback().expect("rollback");
        assert_eq!(fs::read_to_string(&t.dest).expect("read"), "old\n");
        let mode = fs::metadata(&t.dest).expect("md").mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert_eq!(names(dir.path()), ["up.conf"], "nothing left beside dest");
    }

    #[test]
    fn rollback_of_a_new_file_removes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = target(dir.path(), None);
        write(plan(&t, "new\n".into()).expect("plan"))
            .stage()
            .expect("stage")
            .swap()
            .expect("swap")
            .rollback()
            .expect("rollback");
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_swap_never_committed_is_undone_at_the_next_start_and_stale_stages_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = target(dir.path(), None);
        fs::write(&t.dest, "old\n").expect("dest");
        let swapped = write(plan(&t, "unchecked\n".into()).expect("plan"))
            .stage()
            .expect("stage")
            .swap()
            .expect("swap");
        std::mem::forget(swapped); // the process died here
        fs::write(dir.path().join(".up.conf.a1B2c3.stage"), "debris").expect("debris");
        fs::write(dir.path().join(".other.conf.a1B2c3.stage"), "not ours").expect("other");
        assert_eq!(recover([t.dest.as_path()]), std::slice::from_ref(&t.dest));
        assert_eq!(fs::read_to_string(&t.dest).expect("read"), "old\n");
        assert_eq!(names(dir.path()), [".other.conf.a1B2c3.stage", "up.conf"]);
        assert!(
            recover([t.dest.as_path()]).is_empty(),
            "nothing left to undo"
        );
    }

    #[test]
    fn an_owed_reload_is_remembered_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("up.conf");
        assert!(!reload_owed(&dest));
        owe_reload(&dest).expect("owe");
        assert!(reload_owed(&dest));
        reload_done(&dest).expect("done");
        assert!(!reload_owed(&dest));
    }
}
