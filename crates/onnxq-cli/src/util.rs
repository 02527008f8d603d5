//! Shared CLI plumbing: error and hint printing, human-readable sizes, output-path checks.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Prints `error: ...` (with its causes) and, when the error knows one, a `hint: ...` line.
#[allow(clippy::print_stderr)]
pub(crate) fn report_error(e: &anyhow::Error) {
    let mut shown = e.to_string();
    eprintln!("error: {shown}");
    for cause in e.chain().skip(1) {
        // IR errors already quote their source; print only causes that add something.
        let text = cause.to_string();
        if !shown.contains(&text) {
            eprintln!("  caused by: {text}");
            shown.push_str(&text);
        }
    }
    let hint = e.chain().find_map(|c| {
        c.downcast_ref::<onnxq_ir::Error>()
            .and_then(onnxq_ir::Error::hint)
            .or_else(|| {
                c.downcast_ref::<onnxq_quant::Error>()
                    .and_then(onnxq_quant::Error::hint)
            })
            .or_else(|| {
                c.downcast_ref::<crate::config::ConfigError>()
                    .map(|_| crate::config::HINT)
            })
            .or_else(|| {
                c.downcast_ref::<onnxq_engine::EngineError>()
                    .and_then(onnxq_engine::EngineError::hint)
            })
    });
    if let Some(hint) = hint {
        eprintln!("\nhint: {hint}");
    }
}

/// A progress bar on stderr (drawn only when stderr is a terminal). Dropped unfinished, as when an
/// error cuts a run short, it stays on screen at its last position so the error starts a new line.
pub(crate) struct Progress(indicatif::ProgressBar);

impl Progress {
    /// A bar of `total` steps counted in `unit`, labelled `what`.
    pub(crate) fn new(what: &str, total: usize, unit: &str) -> Progress {
        let bar = indicatif::ProgressBar::new(total as u64);
        let template = format!(
            "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{elapsed_precise}} (eta {{eta}})"
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_owned());
        Progress(bar)
    }

    /// Sets the count of finished steps.
    pub(crate) fn set(&self, done: usize) {
        self.0.set_position(done as u64);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.0.position() >= self.0.length().unwrap_or(0) {
            self.0.finish_and_clear();
        } else {
            self.0.abandon();
        }
    }
}

/// Prints a message line to stderr.
#[allow(clippy::print_stderr)]
pub(crate) fn note(msg: &str) {
    eprintln!("{msg}");
}

/// `1234567` → `1.2 MB` (decimal units, as file managers show).
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Refuses an output path that is the input itself (the input is never modified) or a folder.
pub(crate) fn check_output(input: &Path, output: &Path) -> Result<()> {
    if output.is_dir() {
        bail!(
            "output `{}` is a folder; give a file path such as `{}`",
            output.display(),
            output.join("model.onnx").display()
        );
    }
    let canon_in = input
        .canonicalize()
        .with_context(|| format!("cannot read `{}`", input.display()))?;
    if resolve(output)? == canon_in {
        bail!(
            "output `{}` is the input model; onnxq never modifies its input, write to a new path",
            output.display()
        );
    }
    Ok(())
}

/// The absolute path `p` will have, resolving links in its folder (the file may not exist yet).
fn resolve(p: &Path) -> Result<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Ok(c);
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = parent
        .canonicalize()
        .with_context(|| format!("output folder `{}` does not exist", parent.display()))?;
    Ok(dir.join(p.file_name().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1500), "1.5 KB");
        assert_eq!(human_bytes(2_540_000_000), "2.5 GB");
    }
}
