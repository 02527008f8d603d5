//! Shared CLI plumbing: errors that carry their hint and the printing of both, "did you mean",
//! progress bars, human-readable sizes.

use anyhow::Result;
use std::fmt;

/// An error with the sentence that tells the user what to do about it. Its message and causes are
/// the wrapped error's, so wrapping changes nothing but the hint `report_error` prints.
#[derive(Debug)]
pub(crate) struct Hinted {
    error: anyhow::Error,
    hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The wrapped error's own causes: the chain reads as if it had not been wrapped.
        self.error.chain().nth(1)
    }
}

/// An error with `message` and `hint` (for `return Err(fail(...))` and `ok_or_else`).
pub(crate) fn fail(message: impl fmt::Display, hint: impl Into<String>) -> anyhow::Error {
    Hinted {
        error: anyhow::anyhow!("{message}"),
        hint: hint.into(),
    }
    .into()
}

/// `.hint("...")` on any fallible result: the error keeps its message and gains this hint, which
/// wins over a hint its source already knows (the caller knows the context better).
pub(crate) trait HintExt<T> {
    /// Attaches `hint` to the error.
    fn hint(self, hint: impl Into<String>) -> Result<T>;
}

impl<T, E: Into<anyhow::Error>> HintExt<T> for std::result::Result<T, E> {
    fn hint(self, hint: impl Into<String>) -> Result<T> {
        self.map_err(|e| {
            Hinted {
                error: e.into(),
                hint: hint.into(),
            }
            .into()
        })
    }
}

/// The hint of an error without one of its own: every error ends with a `hint:` line, as the
/// README promises, and this one says where to look.
pub(crate) const FALLBACK_HINT: &str =
    "`onnxq <command> --help` lists each command's options and what they take";

/// The most specific hint `e` knows: the outermost [`Hinted`] in its chain, else one of the
/// library errors' own hints, else one for an I/O error by its kind.
pub(crate) fn hint_of(e: &anyhow::Error) -> Option<String> {
    let typed = |c: &(dyn std::error::Error + 'static)| -> Option<String> {
        if let Some(h) = c.downcast_ref::<Hinted>() {
            return Some(h.hint.clone());
        }
        c.downcast_ref::<onnxq_ir::Error>()
            .and_then(onnxq_ir::Error::hint)
            .or_else(|| {
                c.downcast_ref::<onnxq_quant::Error>()
                    .and_then(onnxq_quant::Error::hint)
            })
            .or_else(|| {
                c.downcast_ref::<onnxq_engine::EngineError>()
                    .and_then(onnxq_engine::EngineError::hint)
            })
            .map(str::to_owned)
    };
    e.chain().find_map(typed).or_else(|| {
        e.chain()
            .find_map(|c| c.downcast_ref::<std::io::Error>())
            .and_then(|io| match io.kind() {
                std::io::ErrorKind::NotFound => {
                    Some("check the path (it is relative to the current folder)")
                }
                std::io::ErrorKind::PermissionDenied => {
                    Some("check the file's permissions, or write to a folder you own")
                }
                _ => None,
            })
            .map(str::to_owned)
    })
}

/// Prints `error: ...` (with its causes), a blank line and `hint: ...`: the error's own hint, else
/// [`FALLBACK_HINT`].
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
    let hint = hint_of(e).unwrap_or_else(|| FALLBACK_HINT.to_owned());
    eprintln!("\nhint: {hint}");
}

/// The candidate closest to `word` (case-insensitive edit distance), if it is close enough to be
/// a misspelling of it: at most a third of its length, and at least one edit allowed.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = word.to_lowercase();
    let limit = (w.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (distance(&w, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
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

/// How much the commands print: `-q` only warnings (and errors), `-v` more detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// The process-wide verbosity, set once from the global flags before a command runs (a global
/// rather than a parameter: every command prints through [`note`]).
static VERBOSITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);

/// Sets the verbosity for the rest of the run.
pub(crate) fn set_verbosity(v: Verbosity) {
    VERBOSITY.store(v as u8, std::sync::atomic::Ordering::Relaxed);
}

/// The verbosity set by [`set_verbosity`].
pub(crate) fn verbosity() -> Verbosity {
    match VERBOSITY.load(std::sync::atomic::Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// Prints a message line to stderr, unless `-q`.
#[allow(clippy::print_stderr)]
pub(crate) fn note(msg: &str) {
    if verbosity() > Verbosity::Quiet {
        eprintln!("{msg}");
    }
}

/// Prints a warning line to stderr, even with `-q`: it says the result is worse than asked for.
#[allow(clippy::print_stderr)]
pub(crate) fn warn(msg: &str) {
    eprintln!("warning: {msg}");
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

#[cfg(test)]
mod tests {
    use super::{HintExt, did_you_mean, fail, hint_of, human_bytes};

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1500), "1.5 KB");
        assert_eq!(human_bytes(2_540_000_000), "2.5 GB");
    }

    #[test]
    fn hints_travel_with_errors() {
        let e = fail("bad `x`", "give `y`");
        assert_eq!(e.to_string(), "bad `x`");
        assert_eq!(hint_of(&e).as_deref(), Some("give `y`"));
        // `.hint` keeps the message and the causes, and the outer hint wins.
        let r: anyhow::Result<()> = Err(anyhow::anyhow!("inner").context("outer"));
        let e = r.hint("first").hint("second").unwrap_err();
        assert_eq!(e.to_string(), "outer");
        assert_eq!(
            e.chain().nth(1).map(|c| c.to_string()).as_deref(),
            Some("inner")
        );
        assert_eq!(hint_of(&e).as_deref(), Some("second"));
        assert_eq!(hint_of(&anyhow::anyhow!("plain")), None);
    }

    #[test]
    fn misspellings() {
        let keys = ["per_channel", "reduce_range", "Gemm", "Conv"];
        assert_eq!(did_you_mean("per_chanel", keys), Some("per_channel"));
        assert_eq!(did_you_mean("Gem", keys), Some("Gemm"));
        assert_eq!(did_you_mean("conv", keys), Some("Conv"));
        assert_eq!(did_you_mean("FooBar", keys), None);
    }
}
