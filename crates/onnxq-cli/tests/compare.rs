//! `onnxq compare` against ONNX Runtime's own debugging API (`qdq_loss_debug`, run by
//! `tests/py/ort_qdq_debug.py`): weight and activation SQNRs of QDQ models made by onnxq and by
//! ORT's tool agree within 1e-3 dB; dynamic, QOperator and weight-only models are matched too;
//! a node ruined on purpose is found; memory does not grow with samples; bad input is refused.

#![expect(
    clippy::unwrap_used,
    reason = "integration tests: a panic is the test failure we want"
)]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use common::{onnxq, ort_quantize, quantize};
use onnxq_testkit::{corpus_feeds, corpus_model, run_py};
use serde_json::Value;

/// `onnxq compare FLOAT QUANT --data FEEDS --samples N --json OUT [flags]`; the parsed JSON.
fn compare(float: &Path, quant: &Path, feeds: &Path, samples: usize, out: &Path) -> Value {
    let n = samples.to_string();
    let args: Vec<&OsStr> = vec![
        "compare".as_ref(),
        float.as_ref(),
        quant.as_ref(),
        "--data".as_ref(),
        feeds.as_ref(),
        "--samples".as_ref(),
        n.as_ref(),
        "--json".as_ref(),
        out.as_ref(),
    ];
    let (ok, stderr) = onnxq(&args);
    assert!(ok, "onnxq compare {}:\n{stderr}", quant.display());
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// ORT's figures for the same models and samples (SQNR in float64, see the script).
fn ort_debug(float: &Path, quant: &Path, feeds: &Path, samples: usize, out: &Path) -> Value {
    let n = samples.to_string();
    let args: Vec<&OsStr> = vec![
        float.as_ref(),
        quant.as_ref(),
        "--data".as_ref(),
        feeds.as_ref(),
        "--samples".as_ref(),
        n.as_ref(),
        "--out".as_ref(),
        out.as_ref(),
        "--float64".as_ref(),
    ];
    let (ok, text) = run_py("ort_qdq_debug.py", &args);
    assert!(ok, "ort_qdq_debug.py {}:\n{text}", quant.display());
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

fn by_name<'a>(v: &'a Value, key: &str) -> std::collections::BTreeMap<String, &'a Value> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e))
        .collect()
}

/// Every figure ORT gives is ours within 1e-3 dB, except weights where ORT's integer
/// subtraction wraps around: those equal the script's int64 dequantization (and differ from
/// ORT's). Returns how many figures were checked.
fn assert_matches_ort(ours: &Value, ort: &Value, what: &str) -> usize {
    let (w, a) = (by_name(ours, "weights"), by_name(ours, "activations"));
    let mut checked = 0;
    for (name, sqnr) in ort["weights"].as_object().unwrap() {
        let mine = w
            .get(name)
            .unwrap_or_else(|| panic!("{what}: weight `{name}` not matched"));
        let (x, y) = (sqnr.as_f64().unwrap(), mine["sqnr_db"].as_f64().unwrap());
        let exact = ort["weights_int32"][name].as_f64().unwrap();
        assert!(
            (exact - y).abs() <= 1e-3,
            "{what}: weight `{name}`: exact {exact} dB, onnxq {y} dB"
        );
        if (exact - x).abs() <= 1e-3 {
            checked += 1;
        }
    }
    for (name, errs) in ort["activations"].as_object().unwrap() {
        let mine = a
            .get(name)
            .unwrap_or_else(|| panic!("{what}: activation `{name}` not matched"));
        for (theirs, field) in [("qdq_err", "qdq_sqnr_db"), ("xmodel_err", "xmodel_sqnr_db")] {
            let Some(x) = errs.get(theirs).and_then(Value::as_f64) else {
                continue;
            };
            let y = mine[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: `{name}` has no {field}"));
            assert!(
                (x - y).abs() <= 1e-3,
                "{what}: `{name}` {theirs}: ORT {x} dB, onnxq {y} dB"
            );
            checked += 1;
        }
    }
    checked
}

/// QDQ models of four corpus models, made by onnxq and by ORT's tool: ORT's `qdq_loss_debug`
/// figures are ours within 1e-3 dB, and we match at least every tensor it matches.
#[test]
fn qdq_figures_equal_onnx_runtime_qdq_loss_debug() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["digits-cnn", "mobilenetv2", "ppocr-rec", "minilm-l6-v2"] {
        let (model, feeds) = (corpus_model(name), corpus_feeds(name));
        let ours = dir.path().join(format!("{name}.onnxq.onnx"));
        quantize(
            &model,
            &ours,
            &["--mode", "static", "--data", feeds.to_str().unwrap()],
        );
        let orts = dir.path().join(format!("{name}.ort.onnx"));
        ort_quantize(
            "static",
            &model,
            &orts,
            &["--data", feeds.to_str().unwrap()],
        )
        .unwrap();
        for (who, q) in [("onnxq", &ours), ("ort", &orts)] {
            let what = format!("{name} ({who}'s QDQ model)");
            let mine = compare(
                &model,
                q,
                &feeds,
                4,
                &dir.path().join(format!("{name}.{who}.json")),
            );
            let theirs = ort_debug(
                &model,
                q,
                &feeds,
                4,
                &dir.path().join(format!("{name}.{who}.ort.json")),
            );
            let checked = assert_matches_ort(&mine, &theirs, &what);
            assert!(checked > 10, "{what}: only {checked} figures to check");
            assert_eq!(mine["schema"], "onnxq-compare/1");
            assert_eq!(mine["format"], "qdq", "{what}");
            let outputs = mine["outputs"].as_array().unwrap();
            assert!(
                !outputs.is_empty() && outputs[0]["cosine"].as_f64().unwrap() > 0.0,
                "{what}"
            );
        }
    }
}

/// uint8 weights: ORT's `create_weight_matching` subtracts the zero point in uint8 and wraps
/// around; onnxq's figure is the right one (the script's own int32 dequantization).
#[test]
fn uint8_weights_do_not_wrap_around() {
    let dir = tempfile::tempdir().unwrap();
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let q = dir.path().join("u8.onnx");
    let data = feeds.to_str().unwrap();
    let flags = [
        "--mode",
        "static",
        "--data",
        data,
        "--weight-type",
        "uint8",
        "--activation-type",
        "uint8",
    ];
    quantize(&model, &q, &flags);
    let mine = compare(&model, &q, &feeds, 2, &dir.path().join("u8.json"));
    let theirs = ort_debug(&model, &q, &feeds, 2, &dir.path().join("u8.ort.json"));
    let w = by_name(&mine, "weights");
    let mut wrapped = 0;
    for (name, exact) in theirs["weights_int32"].as_object().unwrap() {
        let y = w[name]["sqnr_db"].as_f64().unwrap();
        assert!(
            (exact.as_f64().unwrap() - y).abs() <= 1e-3,
            "`{name}`: exact {exact}, onnxq {y}"
        );
        let orts = theirs["weights"][name].as_f64().unwrap();
        if orts < 0.0 && y > 10.0 {
            wrapped += 1;
        }
    }
    assert!(
        wrapped > 0,
        "no uint8 weight where ORT's figure wraps around: {theirs}"
    );
}

/// Dynamic, QOperator and weight-only (MatMulNBits) models are matched: their weights through
/// MatMulInteger / QLinear ops / MatMulNBits, QOperator activations dequantized.
#[test]
fn dynamic_qoperator_and_weight_only_models_are_matched() {
    let dir = tempfile::tempdir().unwrap();
    let (minilm, minilm_feeds) = (corpus_model("minilm-l6-v2"), corpus_feeds("minilm-l6-v2"));
    let dynamic = dir.path().join("dyn.onnx");
    quantize(&minilm, &dynamic, &["--mode", "dynamic"]);
    let r = compare(
        &minilm,
        &dynamic,
        &minilm_feeds,
        2,
        &dir.path().join("dyn.json"),
    );
    assert_eq!(r["format"], "dynamic");
    let ws = r["weights"].as_array().unwrap();
    assert_eq!(ws.len(), 36, "one per MatMul weight");
    assert!(
        ws.iter()
            .all(|w| w["op"] == "MatMulInteger" && w["sqnr_db"].as_f64().unwrap() > 5.0)
    );
    assert!(r["outputs"][0]["cosine"].as_f64().unwrap() > 0.9);

    let (digits, digits_feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let qop = dir.path().join("qop.onnx");
    let data = digits_feeds.to_str().unwrap();
    quantize(
        &digits,
        &qop,
        &["--mode", "static", "--format", "qoperator", "--data", data],
    );
    let r = compare(
        &digits,
        &qop,
        &digits_feeds,
        4,
        &dir.path().join("qop.json"),
    );
    assert_eq!(r["format"], "qoperator");
    let ops: Vec<&str> = r["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["op"].as_str().unwrap())
        .collect();
    assert!(ops.contains(&"QLinearConv"), "{ops:?}");
    let deq = r["activations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["quant_tensor"]
                .as_str()
                .is_some_and(|t| t.ends_with("_quantized"))
        })
        .count();
    assert!(deq >= 3, "QOperator activations dequantized: {deq}");

    let wo = dir.path().join("wo.onnx");
    quantize(&minilm, &wo, &["--mode", "weight-only"]);
    let r = compare(&minilm, &wo, &minilm_feeds, 2, &dir.path().join("wo.json"));
    assert_eq!(r["format"], "weight-only");
    let w = by_name(&r, "weights");
    let (ok, text) = run_py("weight_error.py", &[minilm.as_os_str(), wo.as_os_str()]);
    assert!(ok, "{text}");
    let mse: std::collections::BTreeMap<String, f64> = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(mse.len(), w.len(), "every MatMulNBits weight matched");
    for (name, want) in mse {
        let got = w[&name]["mse"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want.max(1e-12) + 1e-15,
            "`{name}`: {got} vs {want}"
        );
    }
}

/// A node ruined on purpose (its output's range forced to ±0.01) is where the error starts.
#[test]
fn a_ruined_node_is_where_error_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let overrides = dir.path().join("ruin.json");
    std::fs::write(&overrides, r#"{"relu_1": [{"rmin": -0.01, "rmax": 0.01}]}"#).unwrap();
    let q = dir.path().join("ruined.onnx");
    let data = feeds.to_str().unwrap();
    quantize(
        &model,
        &q,
        &[
            "--mode",
            "static",
            "--data",
            data,
            "--overrides",
            overrides.to_str().unwrap(),
        ],
    );
    let r = compare(&model, &q, &feeds, 8, &dir.path().join("ruined.json"));
    let first = &r["ranking"]["first_drop"];
    // The Conv writing `relu_1` (its Relu folded into the quantized range) or the Relu itself.
    let node = first["node"].as_str().unwrap();
    assert!(
        ["node_Conv_26", "node_relu_1"].contains(&node),
        "{}",
        r["ranking"]
    );
    assert!(first["drop_db"].as_f64().unwrap() > 10.0);
    // The measured suggestion keeps that node float and restores the output.
    let best = &r["best"];
    let exclude: Vec<&str> = best["exclude"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        exclude
            .iter()
            .any(|n| ["node_Conv_26", "node_relu_1"].contains(n)),
        "{best}"
    );
    let (before, after) = (
        best["output_sqnr_db"]["before"].as_f64().unwrap(),
        best["output_sqnr_db"]["after"].as_f64().unwrap(),
    );
    assert!(before < 5.0 && after > before + 20.0, "{best}");
    assert!(
        best["flag"].as_str().unwrap().starts_with("--exclude "),
        "{best}"
    );
    // The HTML report of the same comparison parses and plots exactly the JSON figures.
    let html = dir.path().join("ruined.html");
    let json = dir.path().join("ruined2.json");
    let (ok, stderr) = onnxq(&[
        "compare".as_ref(),
        model.as_os_str(),
        q.as_os_str(),
        "--data".as_ref(),
        feeds.as_os_str(),
        "--samples".as_ref(),
        "8".as_ref(),
        "--suggest".as_ref(),
        "0".as_ref(),
        "--json".as_ref(),
        json.as_os_str(),
        "--html".as_ref(),
        html.as_os_str(),
    ]);
    assert!(ok, "{stderr}");
    let (ok, text) = run_py(
        "check_report_html.py",
        &[json.as_os_str(), html.as_os_str()],
    );
    assert!(ok, "{text}");
}

/// Memory does not grow with samples: the comparison holds one sample's tensors, 16 samples or 64.
#[test]
fn memory_is_flat_in_the_number_of_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let q = dir.path().join("q.onnx");
    quantize(
        &model,
        &q,
        &["--mode", "static", "--data", feeds.to_str().unwrap()],
    );
    let a = compare(&model, &q, &feeds, 16, &dir.path().join("16.json"));
    let b = compare(&model, &q, &feeds, 64, &dir.path().join("64.json"));
    assert_eq!(
        (a["samples"].as_u64(), b["samples"].as_u64()),
        (Some(16), Some(64))
    );
    let (pa, pb) = (
        a["peak_held_bytes"].as_u64().unwrap(),
        b["peak_held_bytes"].as_u64().unwrap(),
    );
    assert!(
        pa > 0 && pa == pb,
        "peak held bytes: {pa} (16 samples) vs {pb} (64)"
    );
}

/// Models that do not belong together and data that does not fit: a clear error, exit 2.
#[test]
fn bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, text) = run_py("make_compare_models.py", &[d.as_os_str()]);
    assert!(ok, "{text}");
    let data = d.join("data.npz");
    let q8 = d.join("conv8.q.onnx");
    quantize(
        &d.join("conv8.onnx"),
        &q8,
        &["--mode", "static", "--data", data.to_str().unwrap()],
    );
    let qr = d.join("renamed.q.onnx");
    quantize(
        &d.join("renamed.onnx"),
        &qr,
        &["--mode", "static", "--data", data.to_str().unwrap()],
    );
    let cases: [(PathBuf, &PathBuf, PathBuf, &str); 4] = [
        (
            d.join("other_input.onnx"),
            &q8,
            data.clone(),
            "inputs differ",
        ),
        (
            d.join("conv4.onnx"),
            &q8,
            data.clone(),
            "not made from this float model",
        ),
        (
            d.join("conv4.onnx"),
            &qr,
            data.clone(),
            "no tensor of the quantized model matches",
        ),
        (
            d.join("conv8.onnx"),
            &q8,
            d.join("bad_data.npz"),
            "bad_data.npz",
        ),
    ];
    for (float, quant, feeds, want) in &cases {
        let json = d.join("out.json");
        let args: Vec<&OsStr> = vec![
            "compare".as_ref(),
            float.as_ref(),
            quant.as_ref(),
            "--data".as_ref(),
            feeds.as_ref(),
            "--json".as_ref(),
            json.as_ref(),
        ];
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_onnxq"))
            .args(&args)
            .env("ONNXQ_PYTHON", onnxq_testkit::python())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{want}: {stderr}");
        assert!(
            stderr.contains(want) && stderr.contains("hint:"),
            "{want}: {stderr}"
        );
        assert!(!json.exists(), "{want}: a report was written");
    }
}

/// `quantize --html` writes the comparison of the model it made, with the quantize report's nodes;
/// without --data it is refused before any work.
#[test]
fn quantize_writes_the_html_report() {
    let dir = tempfile::tempdir().unwrap();
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let (q, html) = (dir.path().join("q.onnx"), dir.path().join("q.html"));
    let data = feeds.to_str().unwrap();
    quantize(
        &model,
        &q,
        &[
            "--mode",
            "static",
            "--data",
            data,
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("node_Conv_26") && page.contains("quantized"));
    let refused = common::refused(
        &model,
        &q.with_extension("2.onnx"),
        &["--mode", "dynamic", "--html", "x.html"],
    );
    assert!(refused.contains("--html"), "{refused}");
}
