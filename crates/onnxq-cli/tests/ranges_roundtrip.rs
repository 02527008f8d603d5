//! Every ranges file `onnxq calibrate` writes is accepted by `onnxq quantize --ranges`, and gives
//! the model, byte for byte, that `--data` gives with the same calibration settings and engine
//! (ONNX Runtime, found through the oracle's Python): on the corpus (MinMax everywhere, two
//! histogram methods on digits-cnn) and on generated edge cases (`tests/py/make_range_edge_models.py`:
//! an empty tensor, constant ones, NaN ones, infinite ones) under every calibration method, where
//! the quantized model must also load and run in ONNX Runtime with no infinite or NaN scale.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the test failure we want"
)]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use common::{onnxq, quantize};
use onnxq_testkit::{CORPUS, corpus_feeds, corpus_model, python_ok, run_py};

/// Every file of a folder, by name, with its bytes (a model and its external data, if any).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

/// `calibrate -o r.json`, then `quantize --ranges r.json` and `quantize --data` with the same
/// `flags`; asserts both models are byte-identical and returns the ranges file and the model.
fn round_trip(
    model: &Path,
    data: &Path,
    work: &Path,
    flags: &[&str],
) -> (serde_json::Value, PathBuf) {
    let label = format!("{} {flags:?}", model.display());
    for sub in ["from-ranges", "from-data"] {
        let _ = std::fs::remove_dir_all(work.join(sub));
        std::fs::create_dir_all(work.join(sub)).unwrap();
    }
    let ranges = work.join("r.json");
    let mut args: Vec<&OsStr> = vec![
        "calibrate".as_ref(),
        model.as_ref(),
        "--data".as_ref(),
        data.as_ref(),
        "--engine".as_ref(),
        "ort".as_ref(),
        "-o".as_ref(),
        ranges.as_ref(),
    ];
    args.extend(flags.iter().map(OsStr::new));
    let (ok, stderr) = onnxq(&args);
    assert!(ok, "{label}: calibrate failed:\n{stderr}");

    let from_ranges = work.join("from-ranges/q.onnx");
    let static_ranges = ["--mode", "static", "--ranges", ranges.to_str().unwrap()];
    let mut args: Vec<&OsStr> = vec![
        "quantize".as_ref(),
        model.as_ref(),
        "-o".as_ref(),
        from_ranges.as_ref(),
    ];
    args.extend(static_ranges.iter().map(OsStr::new));
    let (ok, stderr) = onnxq(&args);
    assert!(
        ok,
        "{label}: quantize --ranges refused the file calibrate wrote:\n{stderr}"
    );

    let from_data = work.join("from-data/q.onnx");
    let mut with_data = vec![
        "--mode",
        "static",
        "--data",
        data.to_str().unwrap(),
        "--engine",
        "ort",
    ];
    with_data.extend_from_slice(flags);
    quantize(model, &from_data, &with_data);
    assert!(
        files(&work.join("from-ranges")) == files(&work.join("from-data")),
        "{label}: --ranges and --data give different models"
    );
    let text = std::fs::read(&ranges).unwrap();
    (serde_json::from_slice(&text).unwrap(), from_ranges)
}

/// A ranges file's bound as float32 ("inf"/"-inf" strings included).
fn bound(v: &serde_json::Value) -> f32 {
    match v.as_str() {
        Some("inf") => f32::INFINITY,
        Some("-inf") => f32::NEG_INFINITY,
        Some(other) => panic!("bound `{other}` is not a number"),
        None => v.as_f64().unwrap() as f32,
    }
}

/// Every range in the file is a real interval, and no tensor is both ranged and skipped.
fn assert_valid(label: &str, ranges: &serde_json::Value) {
    let tensors = ranges["tensors"].as_object().unwrap();
    for (name, r) in tensors {
        let (lo, hi) = (bound(&r["min"]), bound(&r["max"]));
        assert!(lo <= hi, "{label}: `{name}` has the range [{lo}, {hi}]");
    }
    if let Some(skipped) = ranges["skipped"].as_object() {
        for name in skipped.keys() {
            assert!(
                !tensors.contains_key(name),
                "{label}: `{name}` is ranged and skipped"
            );
        }
    }
}

#[test]
fn corpus_minmax_ranges_give_the_data_model() {
    let dir = tempfile::tempdir().unwrap();
    for name in CORPUS {
        let (ranges, _) = round_trip(&corpus_model(name), &corpus_feeds(name), dir.path(), &[]);
        assert_valid(name, &ranges);
    }
}

/// Two histogram methods with real searches on the smallest corpus model (the others take
/// minutes in a debug build); the edge cases below cover every method.
#[test]
fn corpus_histogram_ranges_give_the_data_model() {
    let dir = tempfile::tempdir().unwrap();
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    for flags in [
        &["--method", "percentile", "--symmetric", "false"][..],
        &["--method", "entropy", "--num-bins", "512"],
    ] {
        let (ranges, _) = round_trip(&model, &feeds, dir.path(), flags);
        assert_valid(&format!("digits-cnn {flags:?}"), &ranges);
    }
}

/// Every calibration method and MinMax option.
const METHODS: &[&[&str]] = &[
    &[],
    &["--symmetric"],
    &["--moving-average"],
    &["--method", "entropy"],
    &["--method", "entropy", "--num-bins", "512"],
    &["--method", "percentile"],
    &["--method", "percentile", "--symmetric", "false"],
    &["--method", "distribution"],
];

/// Loads each model in ONNX Runtime, runs it on every sample of the case's data, and fails on a
/// QuantizeLinear/DequantizeLinear scale that is not finite and positive.
const CHECK_MODELS: &str = r#"
import sys
import numpy as np, onnx, onnxruntime as ort
from onnx import numpy_helper
samples = np.load(sys.argv[1])["x"]
for path in sys.argv[2:]:
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    pairs = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert pairs, f"{path}: nothing quantized"
    for n in pairs:
        s = inits[n.input[1]]
        assert np.isfinite(s).all() and (s > 0).all(), f"{path}: scale {n.input[1]} = {s}"
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for x in samples:
        session.run(None, {"x": x})
print("ok")
"#;

/// Writes the edge-case models into `dir` and returns the folder of `case`.
fn edge_models(dir: &Path, case: &str) -> PathBuf {
    let models = dir.join("models");
    let (ok, listing) = run_py("make_range_edge_models.py", &[models.as_os_str()]);
    assert!(ok, "{listing}");
    let cases: Vec<&str> = listing.lines().map(str::trim).collect();
    assert_eq!(cases, ["empty", "constant", "nan", "infinite"]);
    models.join(case)
}

/// Every method round-trips on `case`'s model, each ranges file is valid and lists `unranged`
/// as skipped for no values, and every quantized model runs in ONNX Runtime with sane scales.
fn edge_case(case: &str, unranged: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let folder = edge_models(dir.path(), case);
    let (model, data) = (folder.join("model.onnx"), folder.join("calib.npz"));
    let mut quantized: Vec<PathBuf> = Vec::new();
    for (i, flags) in METHODS.iter().enumerate() {
        let label = format!("{case} {flags:?}");
        let (ranges, q) = round_trip(&model, &data, &dir.path().join(i.to_string()), flags);
        assert_valid(&label, &ranges);
        for t in unranged {
            assert!(
                ranges["skipped"][*t]
                    .as_str()
                    .is_some_and(|r| r.contains("no values observed")),
                "{label}: `{t}` is not skipped as unobserved: {ranges}"
            );
        }
        quantized.push(q);
    }
    let mut args: Vec<&OsStr> = vec!["-c".as_ref(), CHECK_MODELS.as_ref(), data.as_ref()];
    args.extend(quantized.iter().map(|p| p.as_os_str()));
    assert_eq!(python_ok(&args).trim(), "ok", "{case}");
}

/// An empty `roi` Constant before a Resize and an empty activation (a Slice to no channels)
/// before a Concat: no range (ORT's reductions give `[inf, -inf]`, which `--ranges` refused).
#[test]
fn empty_tensors_round_trip() {
    edge_case("empty", &["roi", "no_channels"]);
}

/// One value in every sample (0, 3, -2): asymmetric Percentile's clamp crossed (`[3, 2.997]`,
/// refused by `--ranges`); the file now holds the uncrossed range with the same parameters.
#[test]
fn constant_tensors_round_trip() {
    edge_case("constant", &[]);
}

/// NaN everywhere, and a NaN in every sample: no range (MinMax wrote `[nan, nan]`).
#[test]
fn nan_tensors_round_trip() {
    edge_case("nan", &["all_nan", "all_nan_x2"]);
}

/// An additive -inf mask and an overflowing Exp: infinite ranges are kept (the tensors stay
/// float), and the histogram methods skip them.
#[test]
fn infinite_tensors_round_trip() {
    edge_case("infinite", &[]);
}

/// A file an earlier onnxq wrote for an empty or all-NaN tensor (`[inf, -inf]`, `[nan, nan]`)
/// still loads, and quantizes as a file without those tensors does.
#[test]
fn legacy_no_value_markers_load() {
    let dir = tempfile::tempdir().unwrap();
    let folder = edge_models(dir.path(), "empty");
    let (model, data) = (folder.join("model.onnx"), folder.join("calib.npz"));
    let (ranges, current) = round_trip(&model, &data, &dir.path().join("now"), &[]);
    let mut legacy = ranges.clone();
    let tensors = legacy["tensors"].as_object_mut().unwrap();
    tensors.insert(
        "roi".into(),
        serde_json::json!({"min": "inf", "max": "-inf"}),
    );
    tensors.insert(
        "no_channels".into(),
        serde_json::json!({"min": "nan", "max": "nan"}),
    );
    legacy.as_object_mut().unwrap().remove("skipped");
    let path = dir.path().join("legacy.json");
    std::fs::write(&path, legacy.to_string()).unwrap();
    let out = dir.path().join("legacy.onnx");
    let stderr = quantize(
        &model,
        &out,
        &["--mode", "static", "--ranges", path.to_str().unwrap()],
    );
    assert!(stderr.contains("earlier onnxq"), "{stderr}");
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(current).unwrap(),
        "the legacy file gives another model"
    );
}
