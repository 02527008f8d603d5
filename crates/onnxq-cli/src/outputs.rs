//! Every path a command reads and writes, checked before the work starts, and the commit of its
//! outputs: all of a command's files or none.
//!
//! [`Plan::check`] refuses an output that is a file the command reads or another output (compared
//! by canonical path and by device + inode, so symbolic and hard links count), a read path that is
//! not a regular file (a named pipe would block the reader forever), and an output folder that is
//! missing or not writable. [`Outputs`] then holds every output as a temporary beside its target
//! and renames them all only once every one is written; dropped uncommitted (on an error) it
//! removes them. A SIGINT/SIGTERM/SIGHUP handler ([`install_signal_cleanup`]) removes this run's
//! temporaries, named with `onnxq_ir::temp_prefix` (it holds the process id), from the output
//! folders and the engine's temporary folder, then exits 128 + the signal (130, 143).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use onnxq_ir::{Layout, Model, Saved};

use crate::util::{HintExt, fail};

/// The folders this run writes temporaries into, for the signal handler.
static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Folders this run created for its outputs and has not committed yet (removed on a signal).
static CREATED_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Held while the outputs are renamed into place, so a signal cannot cut a commit in half: the
/// handler waits for it, and then finds no temporary left.
static COMMIT: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not stop the cleanup; the data (paths) cannot be left inconsistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The name prefix of the engine's temporary folder (in the system's temporary folder).
pub(crate) fn engine_prefix() -> String {
    format!("onnxq-engine-{}-", std::process::id())
}

/// One path of the plan: what it is (for messages), the flag that sets it (for hints), the path.
struct Entry {
    role: String,
    flag: &'static str,
    path: PathBuf,
}

/// The paths one command reads and writes.
#[derive(Default)]
pub(crate) struct Plan {
    reads: Vec<Entry>,
    writes: Vec<Entry>,
    /// Output folders that may not exist yet (`--trt-table DIR`): made at commit time.
    new_dirs: Vec<PathBuf>,
}

impl Plan {
    /// A file the command reads, set by `flag`.
    pub(crate) fn read(&mut self, role: impl Into<String>, flag: &'static str, path: &Path) {
        self.reads.push(Entry {
            role: role.into(),
            flag,
            path: path.to_owned(),
        });
    }

    /// The input model and every external-data file it was loaded from.
    pub(crate) fn read_model(&mut self, path: &Path, model: &Model) {
        self.read("input model", "MODEL", path);
        for f in model.external_files() {
            self.read(
                "input model's external data",
                "MODEL",
                &beside(path, &f.location),
            );
        }
    }

    /// The `--data` paths, and every file inside those that are folders.
    pub(crate) fn read_data(&mut self, paths: &[PathBuf]) -> Result<()> {
        for p in paths {
            if p.is_dir() {
                let mut files = Vec::new();
                walk(p, &mut files)?;
                for f in files {
                    self.read("file in the calibration data folder", "--data", &f);
                }
            } else {
                self.read("calibration data", "--data", p);
            }
        }
        Ok(())
    }

    /// A file the command writes, set by `flag`.
    pub(crate) fn write(&mut self, role: impl Into<String>, flag: &'static str, path: &Path) {
        self.writes.push(Entry {
            role: role.into(),
            flag,
            path: path.to_owned(),
        });
    }

    /// The output model and the external-data file `layout` may write beside it (with `Inline`,
    /// only if the model would pass protobuf's 2 GB limit, but it must not be an input either).
    pub(crate) fn write_model(&mut self, path: &Path, layout: &Layout, data_flag: &'static str) {
        self.write("output model", "-o", path);
        match layout {
            Layout::External { location, .. } => {
                self.write("external data file", data_flag, &beside(path, location));
            }
            Layout::Inline => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                self.write(
                    "external data file (written if the model passes 2 GB)",
                    "-o",
                    &beside(path, &format!("{name}.data")),
                );
            }
        }
    }

    /// Files `names` in the folder `dir`, which is made at commit time if it does not exist.
    pub(crate) fn write_in_folder(
        &mut self,
        role: &str,
        flag: &'static str,
        dir: &Path,
        names: &[&str],
    ) {
        if !dir.exists() {
            self.new_dirs.push(dir.to_owned());
        }
        for n in names {
            self.write(role, flag, &dir.join(n));
        }
    }

    /// Runs every check; on success the output folders are registered for the signal handler.
    pub(crate) fn check(&self) -> Result<()> {
        let mut reads = Vec::new();
        for r in &self.reads {
            check_regular(r)?;
            reads.push((r, identity(&r.path, &self.new_dirs)?));
        }
        let mut writes: Vec<(&Entry, Identity)> = Vec::new();
        for w in &self.writes {
            if w.path.is_dir() {
                return Err(fail(
                    format!("the {} `{}` is a folder", w.role, w.path.display()),
                    format!(
                        "give `{}` a file path, such as `{}`",
                        w.flag,
                        w.path.join("model.onnx").display()
                    ),
                ));
            }
            let id = identity(&w.path, &self.new_dirs)?;
            if let Some((r, how)) = reads.iter().find_map(|(r, rid)| Some((r, id.same(rid)?))) {
                return Err(fail(
                    format!(
                        "the {} `{}` is the {} `{}`{how}; onnxq never overwrites a file it reads",
                        w.role,
                        w.path.display(),
                        r.role,
                        r.path.display()
                    ),
                    format!("give `{}` a path that no input uses", w.flag),
                ));
            }
            if let Some((o, how)) = writes.iter().find_map(|(o, oid)| Some((o, id.same(oid)?))) {
                return Err(fail(
                    format!(
                        "the {} `{}` and the {} `{}` are the same file{how}",
                        o.role,
                        o.path.display(),
                        w.role,
                        w.path.display()
                    ),
                    format!("each output needs its own path; give `{}` another", w.flag),
                ));
            }
            writes.push((w, id));
        }
        self.check_writable()
    }

    /// Every output folder (or, for one made at commit time, the folder it goes in) takes a file:
    /// a probe temporary is made there and removed, before any work is done.
    fn check_writable(&self) -> Result<()> {
        let mut dirs: Vec<(PathBuf, &Entry)> = Vec::new();
        for w in &self.writes {
            let mut dir = folder_of(&w.path).to_owned();
            if self.new_dirs.contains(&dir) {
                dir = folder_of(&dir).to_owned();
            }
            if !dirs.iter().any(|(d, _)| *d == dir) {
                dirs.push((dir, w));
            }
        }
        for (dir, w) in &dirs {
            onnxq_ir::temp_file_in(dir)
                .with_context(|| {
                    format!(
                        "cannot write the {} `{}`: the folder `{}` does not take new files",
                        w.role,
                        w.path.display(),
                        dir.display()
                    )
                })
                .hint(format!(
                    "check that the folder exists and that you may write in it, or give `{}` \
                     another path",
                    w.flag
                ))?;
        }
        let mut registered = lock(&TEMP_DIRS);
        for (dir, _) in dirs {
            registered.push(dir);
        }
        registered.extend(self.new_dirs.iter().cloned());
        Ok(())
    }
}

/// Where a path is: its canonical form (through every link) and, for an existing file, its device
/// and inode (which a hard link shares).
struct Identity {
    given: PathBuf,
    canonical: PathBuf,
    inode: Option<(u64, u64)>,
}

impl Identity {
    /// How `self` is `other`, as words for a message: `Some("")` for the same path as given,
    /// `Some(" (the same file by another path)")` through a link or `.`/`..`,
    /// `Some(" (a hard link to it)")`, else `None`.
    fn same(&self, other: &Identity) -> Option<&'static str> {
        if self.canonical == other.canonical {
            return Some(if self.given == other.given {
                ""
            } else {
                " (the same file by another path)"
            });
        }
        match (self.inode, other.inode) {
            (Some(a), Some(b)) if a == b => Some(" (a hard link to it)"),
            _ => None,
        }
    }
}

fn identity(path: &Path, new_dirs: &[PathBuf]) -> Result<Identity> {
    let canonical = resolve(path, new_dirs)?;
    Ok(Identity {
        given: path.to_owned(),
        canonical,
        inode: inode(path),
    })
}

#[cfg(unix)]
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn inode(_path: &Path) -> Option<(u64, u64)> {
    // Without inode numbers only canonical paths are compared (hard links are then not seen).
    None
}

/// The absolute path `p` will have, resolving links in its folder (the file may not exist yet,
/// nor its folder when that is one the command makes).
fn resolve(p: &Path, new_dirs: &[PathBuf]) -> Result<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Ok(c);
    }
    let parent = folder_of(p);
    let name = p.file_name().unwrap_or_default();
    if new_dirs.iter().any(|d| d == parent) {
        return Ok(resolve(parent, &[])?.join(name));
    }
    let dir = parent
        .canonicalize()
        .with_context(|| {
            format!(
                "the folder `{}` of `{}` does not exist",
                parent.display(),
                p.display()
            )
        })
        .hint("create the folder first, or give a path in an existing one")?;
    Ok(dir.join(name))
}

/// Refuses a read path that exists but is not a regular file, before anything opens it.
fn check_regular(r: &Entry) -> Result<()> {
    let Ok(meta) = std::fs::metadata(&r.path) else {
        return Ok(()); // A missing file is reported by its reader, with the reader's context.
    };
    let file_type = meta.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    let kind = if file_type.is_dir() {
        "a folder"
    } else if is_fifo(&meta) {
        "a named pipe (FIFO)"
    } else {
        "a device, socket or other special file"
    };
    Err(fail(
        format!(
            "the {} `{}` is {kind}, not a regular file",
            r.role,
            r.path.display()
        ),
        format!(
            "onnxq reads only regular files (a pipe or device could block it forever); copy the \
             data into a file and give `{}` that path",
            r.flag
        ),
    ))
}

#[cfg(unix)]
fn is_fifo(meta: &std::fs::Metadata) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type())
}

#[cfg(not(unix))]
fn is_fifo(_meta: &std::fs::Metadata) -> bool {
    false
}

/// Every file under `dir`, sorted; links to folders are not followed (no loops).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list the data folder `{}`", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list the data folder `{}`", dir.display()))?;
    entries.sort();
    for p in entries {
        let link_meta = std::fs::symlink_metadata(&p)
            .with_context(|| format!("cannot read `{}`", p.display()))?;
        if link_meta.is_dir() {
            walk(&p, out)?;
        } else if !(link_meta.file_type().is_symlink() && p.is_dir()) {
            out.push(p);
        }
    }
    Ok(())
}

/// The folder a file is in; `.` for a bare file name.
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The file `name` in the folder of `path`, shown as the user would write it (no `./` prefix).
fn beside(path: &Path, name: &str) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.join(name),
        _ => PathBuf::from(name),
    }
}

/// A command's outputs, written as temporaries beside their targets and renamed together by
/// [`Outputs::commit`]; dropped before that, it removes them (and any folder it made).
#[derive(Default)]
pub(crate) struct Outputs {
    files: Vec<(tempfile::NamedTempFile, PathBuf)>,
    created: Vec<PathBuf>,
}

impl Outputs {
    /// Writes `model` to temporaries for `path` (and its external data).
    pub(crate) fn model(&mut self, model: &Model, path: &Path, layout: &Layout) -> Result<Saved> {
        let staged = onnxq_ir::save_staged(model, path, layout)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        self.files.extend(staged.files);
        Ok(staged.saved)
    }

    /// Writes `bytes` to a temporary for `path`, the `what` ("report", ...).
    pub(crate) fn file(&mut self, what: &str, path: &Path, bytes: &[u8]) -> Result<()> {
        let dir = folder_of(path);
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the folder `{}`", dir.display()))?;
            self.created.push(dir.to_owned());
            lock(&CREATED_DIRS).push(dir.to_owned());
        }
        let err = || format!("cannot write the {what} `{}`", path.display());
        let mut tmp = onnxq_ir::temp_file_in(dir).with_context(err)?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(err)?;
        self.files.push((tmp, path.to_owned()));
        Ok(())
    }

    /// Renames every temporary into place, in the order they were written.
    pub(crate) fn commit(mut self) -> Result<()> {
        let _commit = lock(&COMMIT);
        for (tmp, path) in self.files.drain(..) {
            tmp.persist(&path)
                .map_err(|e| e.error)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
        }
        let mut created = lock(&CREATED_DIRS);
        created.retain(|d| !self.created.contains(d));
        self.created.clear();
        Ok(())
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        // The temporaries go first (dropping one removes it), then the folders made for them.
        self.files.clear();
        for d in self.created.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Starts a thread that, on SIGINT, SIGTERM or SIGHUP, removes this run's temporaries and exits
/// with 128 + the signal's number, as a shell reports a process the signal killed.
#[cfg(unix)]
pub(crate) fn install_signal_cleanup() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install the signal handler that removes temporary files")?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            remove_temporaries();
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

/// Without unix signals there is no handler: the default Ctrl-C handling ends the process and
/// tempfile's own cleanup does not run.
#[cfg(not(unix))]
pub(crate) fn install_signal_cleanup() -> Result<()> {
    Ok(())
}

/// Removes every file of this run's temporaries from the registered output folders and the
/// engine's folders from the system's temporary folder, then the output folders made for this run.
fn remove_temporaries() {
    let _commit = lock(&COMMIT);
    let (temp, engine) = (onnxq_ir::temp_prefix(), engine_prefix());
    let mut dirs = lock(&TEMP_DIRS).clone();
    dirs.push(std::env::temp_dir());
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&temp) {
                let _ = std::fs::remove_file(e.path());
            } else if name.starts_with(&engine) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    for d in lock(&CREATED_DIRS).iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

impl crate::args::LayoutArgs {
    /// The layout these flags ask for `output` (names relative to its folder) with `threshold`;
    /// without `--external-data` or `--inline`, `fallback` (a config's external-data location,
    /// `Some(None)` for the default name), else the input's layout (external stays external).
    pub(crate) fn resolve(
        &self,
        output: &Path,
        model: &Model,
        fallback: Option<Option<String>>,
        threshold: u64,
    ) -> Layout {
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let external = |file: Option<String>| Layout::External {
            location: file.unwrap_or_else(|| format!("{name}.data")),
            threshold,
        };
        match (&self.external_data, self.inline) {
            (Some(file), _) => external(file.clone()),
            (None, true) => Layout::Inline,
            (None, false) => match fallback {
                Some(file) => external(file),
                None if model.external_files().is_empty() => Layout::Inline,
                None => external(None),
            },
        }
    }
}

/// The `wrote MODEL (size) + DATA (size)` line of a command that wrote a model.
pub(crate) fn wrote_line(output: &Path, saved: &onnxq_ir::Saved) -> String {
    let mut msg = format!(
        "wrote {} ({})",
        output.display(),
        crate::util::human_bytes(saved.model_bytes)
    );
    if let Some(loc) = &saved.data_location {
        msg += &format!(" + {loc} ({})", crate::util::human_bytes(saved.data_bytes));
    }
    msg
}
