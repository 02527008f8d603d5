//! `quantize --equalize` on the tiny models of `tests/py/make_equalize_models.py` (layer pairs
//! whose channel ranges are 100x apart): the rewritten float model (`--rewritten`) gives the
//! float model's outputs (SQNR ≥ 100 dB in ONNX Runtime, bias absorption included), the two
//! layers' per-channel ranges are equal within 1 %, the QDQ output's SQNR rises over the plain
//! static model's, and a Clip between layers is skipped unless `relu6` turns it into a Relu,
//! which the summary measures.

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::Path;

use common::{quantize, sqnr};
use onnxq_testkit::{python_ok, repo_root};

fn models() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = repo_root().join("tests/py/make_equalize_models.py");
    python_ok(&[script.as_ref(), dir.path().as_ref()]);
    dir
}

/// The largest relative difference between the head's per-output-channel and the tail's
/// per-input-channel `max |w|` of the Conv pair `head` → `tail` in `model`.
fn range_mismatch(model: &Path, head: &str, tail: &str) -> f64 {
    let code = "import onnx, sys, numpy as np
from onnx import numpy_helper
m = onnx.load(sys.argv[1]); g = m.graph
w = {i.name: numpy_helper.to_array(i) for i in g.initializer}
n = {x.name: x for x in g.node}
h, t = w[n[sys.argv[2]].input[1]], w[n[sys.argv[3]].input[1]]
r1 = np.abs(h).reshape(h.shape[0], -1).max(axis=1)
r2 = np.abs(np.moveaxis(t, 1, 0)).reshape(t.shape[1], -1).max(axis=1)
print(float(np.max(np.abs(r1 - r2) / np.maximum(r1, r2))))";
    python_ok(&[
        "-c".as_ref(),
        code.as_ref(),
        model.as_ref(),
        head.as_ref(),
        tail.as_ref(),
    ])
    .trim()
    .parse()
    .unwrap()
}

/// Quantizes `name` plainly and with `flags`; returns (plain SQNR, rewritten SQNR, equalized
/// SQNR, the report's `equalization`, stderr).
fn run(dir: &Path, name: &str, flags: &[&str]) -> (f64, f64, f64, serde_json::Value, String) {
    let d = dir.join(name);
    let (float, feeds) = (d.join("model.onnx"), d.join("calib.npz"));
    let data = feeds.to_str().unwrap();
    let plain = d.join("plain.onnx");
    quantize(&float, &plain, &["--data", data, "--engine", "ort"]);
    let (eq, rw, report) = (d.join("eq.onnx"), d.join("rw.onnx"), d.join("r.json"));
    let mut args = vec![
        "--data",
        data,
        "--engine",
        "ort",
        "--rewritten",
        rw.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let log = quantize(&float, &eq, &args);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (
        sqnr(&float, &plain, &feeds),
        sqnr(&float, &rw, &feeds),
        sqnr(&float, &eq, &feeds),
        r["equalization"].clone(),
        log,
    )
}

#[test]
fn equalization_keeps_the_float_model_and_evens_the_ranges() {
    let dir = models();
    // (model, pairs, absorbed, least SQNR gain in dB)
    for (name, pairs, absorbed, gain) in [
        ("pair", 1, 1, 2.0),
        ("depthwise", 2, 1, 5.0),
        ("mlp", 1, 0, 1.0),
    ] {
        let (plain, same, eq, r, log) = run(dir.path(), name, &["--equalize"]);
        assert!(same >= 100.0, "{name}: rewritten float at {same} dB\n{log}");
        assert_eq!(r["pairs"], pairs, "{name}: {r}");
        assert_eq!(r["absorbed"], absorbed, "{name}: {r}");
        assert!(
            eq >= plain + gain,
            "{name}: {plain:.2} dB plain, {eq:.2} dB equalized (want +{gain})\n{log}"
        );
    }
    let rw = dir.path().join("pair/rw.onnx");
    let mismatch = range_mismatch(&rw, "head", "tail");
    assert!(mismatch < 0.01, "per-channel ranges differ by {mismatch}");
    // Before equalization they are 100x apart.
    let float = dir.path().join("pair/model.onnx");
    assert!(range_mismatch(&float, "head", "tail") > 0.5);
}

#[test]
fn a_clip_between_layers_is_skipped_or_made_a_relu() {
    let dir = models();
    let (_, same, _, r, log) = run(dir.path(), "clip", &["--equalize", "-v"]);
    assert_eq!(r["pairs"], 0, "{r}");
    assert!(same >= 100.0, "{log}");
    assert!(
        r["skipped"][0][1].as_str().unwrap().contains("relu6"),
        "{r}"
    );
    let (_, _, _, r, log) = run(dir.path(), "clip", &["--equalize", "relu6"]);
    assert_eq!(
        (r["pairs"].clone(), r["clips_made_relu"].clone()),
        (1.into(), 1.into()),
        "{r}"
    );
    assert!(log.contains("changed the float model"), "{log}");
}
