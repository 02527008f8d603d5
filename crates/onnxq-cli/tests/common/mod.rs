//! Helpers shared by the quantization tests: running onnxq, ONNX Runtime's tool, the comparison
//! script and the corpus metric scripts.

#![allow(dead_code, reason = "each test file uses its own subset")]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the test failure we want"
)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use onnxq_testkit::{corpus_dir, python_ok, run_py};

/// Runs onnxq; returns (success, stderr).
pub(crate) fn onnxq(args: &[&OsStr]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .args(args)
        // The engine's ONNX Runtime library comes from the oracle's Python package.
        .env("ONNXQ_PYTHON", onnxq_testkit::python())
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn quantize(model: &Path, out: &Path, flags: &[&str]) -> String {
    let mut args: Vec<&OsStr> = vec![
        "quantize".as_ref(),
        model.as_ref(),
        "-o".as_ref(),
        out.as_ref(),
    ];
    args.extend(flags.iter().map(OsStr::new));
    let (ok, stderr) = onnxq(&args);
    assert!(
        ok,
        "onnxq quantize {flags:?} on {} failed:\n{stderr}",
        model.display()
    );
    stderr
}

/// `onnxq quantize MODEL -o OUT FLAGS` that must be refused: exit failure, a `hint:` line, no
/// output written. Returns stderr.
pub(crate) fn refused(model: &Path, out: &Path, flags: &[&str]) -> String {
    let mut args: Vec<&OsStr> = vec![
        "quantize".as_ref(),
        model.as_ref(),
        "-o".as_ref(),
        out.as_ref(),
    ];
    args.extend(flags.iter().map(OsStr::new));
    let (ok, stderr) = onnxq(&args);
    assert!(!ok && stderr.contains("\nhint: "), "{flags:?}:\n{stderr}");
    assert!(!out.exists(), "{flags:?} wrote a model");
    stderr
}

/// ORT's tool (`mode` = "dynamic" or "static") on the same model; `Err` with its message when it
/// fails.
pub(crate) fn ort_quantize(
    mode: &str,
    model: &Path,
    out: &Path,
    flags: &[&str],
) -> Result<(), String> {
    let mut args: Vec<&OsStr> = vec![mode.as_ref(), model.as_ref(), out.as_ref()];
    args.extend(flags.iter().map(OsStr::new));
    let (ok, text) = run_py("ort_quantize.py", &args);
    if ok { Ok(()) } else { Err(text) }
}

/// `tests/py/compare_quantized.py` on onnxq's model and ORT's (`None` where ORT's tool fails), plus
/// `flags`; panics with its output unless every check passes.
pub(crate) fn compare(
    float: &Path,
    ours: &Path,
    orts: Option<&Path>,
    feeds: &Path,
    flags: &[&str],
) -> String {
    let orts: &OsStr = orts.map_or("-".as_ref(), |p| p.as_os_str());
    // ORT's tool also writes the value_info of ONNX shape inference, with which ONNX Runtime fuses
    // some float ops (LayerNorm, ...) differently; both run without value_info, the same graphs
    // compute identical bits.
    let mut args: Vec<&OsStr> = vec![
        float.as_ref(),
        ours.as_ref(),
        orts,
        "--feeds".as_ref(),
        feeds.as_ref(),
        "--strip-value-info".as_ref(),
    ];
    args.extend(flags.iter().map(OsStr::new));
    let (ok, text) = run_py("compare_quantized.py", &args);
    assert!(ok, "{} vs ORT:\n{text}", ours.display());
    text
}

pub(crate) fn metric(model_name: &str, model: &Path) -> (String, f64) {
    let script = corpus_dir().join("eval").join(format!("{model_name}.py"));
    let line = python_ok(&[script.as_ref(), model.as_ref()])
        .trim()
        .to_owned();
    let value = line
        .split_whitespace()
        .next()
        .and_then(|kv| kv.split('=').nth(1))
        .unwrap()
        .parse()
        .unwrap();
    (line, value)
}

/// The first float output's SQNR (dB) of `other` against `float` on `feeds` (`tests/py/sqnr.py`,
/// in ONNX Runtime); fails the test when a model does not run.
pub(crate) fn sqnr(float: &Path, other: &Path, feeds: &Path) -> f64 {
    let (ok, text) = run_py("sqnr.py", &[float.as_ref(), other.as_ref(), feeds.as_ref()]);
    assert!(ok, "{text}");
    let line = text.lines().find(|l| l.contains("sqnr_db=")).unwrap();
    line.rsplit('=').next().unwrap().parse().unwrap()
}
