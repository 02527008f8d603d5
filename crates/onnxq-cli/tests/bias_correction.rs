//! `quantize --bias-correction` on the tiny models of `tests/py/make_bias_models.py`, whose int8
//! weights all round the same way per channel (a known output mean shift of alternating sign):
//! on held-out samples, in ONNX Runtime, the corrected model's largest per-channel mean error
//! falls to a tenth of the plain static model's and its SQNR rises, for MatMul + Add, Conv and a
//! Gemm without a bias (one is made), in QDQ and QOperator; a MatMul with no bias to correct is
//! reported as skipped and left as the plain model; the output is deterministic.

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::Path;

use common::quantize;
use onnxq_testkit::{python_ok, repo_root, run_py};

fn models() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = repo_root().join("tests/py/make_bias_models.py");
    python_ok(&[script.as_ref(), dir.path().as_ref()]);
    dir
}

/// (largest per-channel |mean error|, SQNR dB) of `quant` against `float` on `feeds`.
fn mean_error(float: &Path, quant: &Path, feeds: &Path, axis: &str) -> (f64, f64) {
    let args = [
        float.as_ref(),
        quant.as_ref(),
        feeds.as_ref(),
        axis.as_ref(),
    ];
    let (ok, text) = run_py("channel_mean_error.py", &args);
    assert!(ok, "{text}");
    let field = |key: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(key)).unwrap();
        line.rsplit('=').next().unwrap().parse().unwrap()
    };
    (field("max_mean_error="), field("sqnr_db="))
}

/// Quantizes `name` plainly and with `--bias-correction` (and `flags`); returns the two
/// (mean error, SQNR) pairs on the held-out samples, the report's `bias_correction` and the log.
fn run(
    dir: &Path,
    name: &str,
    axis: &str,
    flags: &[&str],
) -> ((f64, f64), (f64, f64), serde_json::Value, String) {
    let d = dir.join(name);
    let (float, calib, eval) = (
        d.join("model.onnx"),
        d.join("calib.npz"),
        d.join("eval.npz"),
    );
    let (plain, corrected, report) = (d.join("plain.onnx"), d.join("bc.onnx"), d.join("r.json"));
    let mut args = vec!["--data", calib.to_str().unwrap(), "--engine", "ort"];
    args.extend_from_slice(flags);
    quantize(&float, &plain, &args);
    args.extend(["--bias-correction", "--report", report.to_str().unwrap()]);
    let log = quantize(&float, &corrected, &args);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (
        mean_error(&float, &plain, &eval, axis),
        mean_error(&float, &corrected, &eval, axis),
        r["bias_correction"].clone(),
        log,
    )
}

#[test]
fn bias_correction_removes_the_mean_shift_on_held_out_samples() {
    let dir = models();
    // (model, channel axis, flags, least SQNR gain in dB): per channel, most columns' scales do
    // not sit on the generator's grid, so less of the error is a shift.
    for (name, axis, flags, gain) in [
        ("matmul_add", "-1", &[][..], 5.0),
        ("conv", "1", &[], 5.0),
        ("gemm", "-1", &[], 5.0),
        ("conv", "1", &["--format", "QOperator"], 5.0),
        ("matmul_add", "-1", &["--per-channel"], 1.0),
    ] {
        let ((e0, db0), (e1, db1), r, log) = run(dir.path(), name, axis, flags);
        assert_eq!(r["corrected"], 1, "{name} {flags:?}: {r}");
        assert!(
            e1 <= 0.1 * e0,
            "{name} {flags:?}: mean error {e0} plain, {e1} corrected\n{log}"
        );
        assert!(
            db1 >= db0 + gain,
            "{name} {flags:?}: {db0} dB → {db1} dB\n{log}"
        );
        assert!(
            log.contains("bias correction: 1 layer(s) corrected"),
            "{log}"
        );
    }
}

#[test]
fn a_layer_without_a_bias_is_skipped_and_the_output_is_deterministic() {
    let dir = models();
    let ((e0, _), (e1, _), r, log) = run(dir.path(), "matmul_only", "-1", &[]);
    assert_eq!(r["corrected"], 0, "{r}");
    assert_eq!(r["skipped"][0][0], "fc", "{r}");
    assert!(log.contains("not corrected fc"), "{log}");
    assert_eq!(e0, e1, "a skipped layer must leave the plain model");
    let d = dir.path().join("conv");
    let once = d.join("once.onnx");
    let again = d.join("again.onnx");
    let calib = d.join("calib.npz");
    let args = ["--data", calib.to_str().unwrap(), "--bias-correction"];
    quantize(&d.join("model.onnx"), &once, &args);
    quantize(&d.join("model.onnx"), &again, &args);
    assert_eq!(
        std::fs::read(&once).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn compare_remakes_a_bias_corrected_model_with_its_correction() {
    let dir = models();
    let d = dir.path().join("matmul_add");
    let (float, calib) = (d.join("model.onnx"), d.join("calib.npz"));
    let (q, json) = (d.join("bc.onnx"), d.join("c.json"));
    let data = calib.to_str().unwrap();
    quantize(
        &float,
        &q,
        &["--data", data, "--engine", "ort", "--bias-correction"],
    );
    let args = [
        "compare".as_ref(),
        float.as_os_str(),
        q.as_os_str(),
        "--data".as_ref(),
        calib.as_os_str(),
        "--engine".as_ref(),
        "ort".as_ref(),
        "--json".as_ref(),
        json.as_os_str(),
    ];
    let (ok, log) = common::onnxq(&args);
    assert!(ok, "{log}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // The baseline of every suggestion is the model re-made as recorded: corrected again, it
    // scores what the given model scores.
    let given = r["outputs"][0]["sqnr_db"].as_f64().unwrap();
    let baseline = r["suggestions"][0]["output_sqnr_db"]["before"]
        .as_f64()
        .unwrap();
    assert!(
        (given - baseline).abs() < 0.01,
        "{given} vs {baseline}\n{log}"
    );
}
