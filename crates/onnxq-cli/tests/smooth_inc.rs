//! `--smooth-quant` against its reference: Intel Neural Compressor 3.7.1's `ORTSmoothQuant`,
//! called as ONNX Runtime's `quantize_static` calls it with `SmoothQuant=True`
//! (`tests/py/inc_smooth.py`, in the side venv of `tests/py/requirements-inc.txt`), on the tiny
//! models of `tests/py/make_smooth_models.py`: the per-channel scales agree (INC's 99.999th
//! percentile against onnxq's max is the whole difference, within 0.5 %), and the quantized
//! model's output SQNR is at least ORT + INC's.

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::process::Command;

use common::{quantize, sqnr};
use onnxq_testkit::{inc_python, python_ok, repo_root, run_py};

/// The value of `key=` in `text`.
fn field(text: &str, key: &str) -> String {
    let line = text.lines().find(|l| l.starts_with(key)).unwrap();
    line[key.len()..].to_owned()
}

#[test]
fn scales_and_accuracy_match_neural_compressor() {
    let dir = tempfile::tempdir().unwrap();
    let script = repo_root().join("tests/py/make_smooth_models.py");
    python_ok(&[script.as_ref(), dir.path().as_ref()]);
    for name in ["layernorm", "decomposed", "relu", "conv"] {
        let d = dir.path().join(name);
        let (float, feeds) = (d.join("model.onnx"), d.join("calib.npz"));
        let (scales, ort_inc) = (d.join("inc_scales.npz"), d.join("ort_inc.onnx"));
        // INC's standalone run (its smoothed float model) is the one whose scales are captured.
        let inc = d.join("inc.onnx");
        let out = Command::new(inc_python())
            .arg(repo_root().join("tests/py/inc_smooth.py"))
            .args([float.as_os_str(), inc.as_os_str()])
            .args(["--data".as_ref(), feeds.as_os_str()])
            .args(["--scales".as_ref(), scales.as_os_str()])
            .args(["--ort-quantize".as_ref(), ort_inc.as_os_str()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: INC failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (ours, rewritten) = (d.join("sq.onnx"), d.join("rw.onnx"));
        let data = feeds.to_str().unwrap();
        let rw = rewritten.to_str().unwrap();
        let args = [
            "--data",
            data,
            "--engine",
            "ort",
            "--smooth-quant",
            "--rewritten",
            rw,
        ];
        let log = quantize(&float, &ours, &args);
        let args = [float.as_os_str(), rewritten.as_os_str(), scales.as_os_str()];
        let (ok, text) = run_py("smooth_scales.py", &args);
        assert!(ok, "{text}");
        assert!(
            !field(&text, "compared=").starts_with('0'),
            "{name}: {text}"
        );
        let diff: f64 = field(&text, "max_rel_diff=").parse().unwrap();
        assert!(
            diff < 5e-3,
            "{name}: scales differ by {diff}\n{text}\n{log}"
        );
        let (mine, theirs) = (sqnr(&float, &ours, &feeds), sqnr(&float, &ort_inc, &feeds));
        assert!(
            mine >= theirs - 0.1,
            "{name}: onnxq {mine:.2} dB, ORT + INC {theirs:.2} dB\n{log}"
        );
    }
}
