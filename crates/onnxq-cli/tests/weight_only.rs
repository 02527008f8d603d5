//! `onnxq quantize --mode weight-only` against ONNX Runtime's `MatMulNBitsQuantizer`
//! (`tests/py/ort_weight_only.py`), compared by `tests/py/compare_weight_only.py`: the checker's
//! full check, the node pattern, node names and attributes, bit-identical packed weights, scales
//! and zero points, and outputs equal to ORT's model's, on the corpus (bytegpt, minilm-l6-v2) and on
//! generated edge shapes (`tests/py/make_weight_only_models.py`). RTN and k-quant are bit-identical
//! where ORT's tool runs and correct where it crashes; HQQ reconstructs every weight better than
//! RTN; bad settings are refused with a hint and write nothing.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::{quantize, refused};
use onnxq_testkit::{corpus_feeds, corpus_model, run_py};

/// ORT's tool on `model` with `flags`; `Err` with its message when it fails.
fn ort(model: &Path, out: &Path, flags: &[&str]) -> Result<(), String> {
    let mut args: Vec<&OsStr> = vec![model.as_ref(), out.as_ref()];
    args.extend(flags.iter().map(OsStr::new));
    let (ok, text) = run_py("ort_weight_only.py", &args);
    if ok { Ok(()) } else { Err(text) }
}

/// The comparison script; panics with its output unless every check passes.
fn compare(float: &Path, ours: &Path, orts: Option<&Path>, extra: &[&str]) -> String {
    let orts: &OsStr = orts.map_or("-".as_ref(), |p| p.as_os_str());
    let mut args: Vec<&OsStr> = vec![float.as_ref(), ours.as_ref(), orts];
    args.extend(extra.iter().map(OsStr::new));
    let (ok, text) = run_py("compare_weight_only.py", &args);
    assert!(ok, "{} vs ORT:\n{text}", ours.display());
    text
}

/// onnxq and ORT's tool on the same model and settings (`ours` are onnxq's flags, `theirs` the
/// reference script's), compared.
fn parity(model: &Path, feeds: Option<&Path>, ours: &[&str], theirs: &[&str], extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (mine, orts) = (dir.path().join("ours.onnx"), dir.path().join("ort.onnx"));
    let mut flags = vec!["--mode", "weight-only"];
    flags.extend(ours);
    quantize(model, &mine, &flags);
    ort(model, &orts, theirs).unwrap();
    let mut args: Vec<&str> = extra.to_vec();
    let feeds_s = feeds.map(|f| f.to_str().unwrap().to_owned());
    if let Some(f) = &feeds_s {
        args.extend(["--feeds", f.as_str()]);
    }
    let text = compare(model, &mine, Some(&orts), &args);
    assert!(text.contains("nodes: ok"), "{text}");
}

/// DEFAULT (ORT's C++ block quantizer) is bit-identical to ORT's in every bit width, both
/// symmetries, two block sizes, with and without Gather.
#[test]
fn default_matches_ort_on_the_corpus() {
    let cases: &[(&str, &[&str])] = &[
        ("bytegpt", &[]),
        (
            "bytegpt",
            &["--bits", "8", "--block-size", "64", "--symmetric"],
        ),
        ("bytegpt", &["--bits", "2", "--block-size", "16"]),
        (
            "bytegpt",
            &["--block-size", "32", "--op-types", "MatMul,Gather"],
        ),
        (
            "minilm-l6-v2",
            &["--block-size", "32", "--symmetric", "--accuracy-level", "4"],
        ),
        ("minilm-l6-v2", &[]),
    ];
    for (name, flags) in cases {
        let theirs: Vec<&str> = flags.to_vec();
        parity(
            &corpus_model(name),
            Some(&corpus_feeds(name)),
            flags,
            &theirs,
            &[],
        );
    }
}

/// RTN and k-quant equal ORT's where its tool runs (an even number of blocks along K); where it
/// crashes (minilm-l6-v2's K = 384 in blocks of 128: three blocks), onnxq's model runs and stays
/// close to the float model.
#[test]
fn rtn_and_k_quant_match_ort() {
    let bytegpt = corpus_model("bytegpt");
    let feeds = corpus_feeds("bytegpt");
    for (ours, theirs) in [
        (
            &["--algo", "rtn", "--block-size", "32"][..],
            &["--algo", "rtn", "--block-size", "32"][..],
        ),
        (
            &["--algo", "RTN", "--block-size", "32", "--symmetric"],
            &["--algo", "rtn", "--block-size", "32", "--symmetric"],
        ),
        (
            &["--algo", "k_quant", "--block-size", "128"],
            &["--algo", "k_quant", "--block-size", "128"],
        ),
    ] {
        parity(&bytegpt, Some(&feeds), ours, theirs, &["--ignore-names"]);
    }
    let minilm = corpus_model("minilm-l6-v2");
    let dir = tempfile::tempdir().unwrap();
    let orts = dir.path().join("ort.onnx");
    let err = ort(&minilm, &orts, &["--algo", "rtn", "--block-size", "128"]).unwrap_err();
    assert!(
        err.contains("cannot reshape"),
        "ORT's tool no longer crashes here: {err}"
    );
    for algo in ["rtn", "k-quant"] {
        let mine = dir.path().join(format!("{algo}.onnx"));
        quantize(&minilm, &mine, &["--mode", "weight-only", "--algo", algo]);
        let feeds = corpus_feeds("minilm-l6-v2");
        let feeds = feeds.to_str().unwrap();
        compare(
            &minilm,
            &mine,
            None,
            &["--feeds", feeds, "--min-cosine", "0.93"],
        );
    }
}

/// Generated shapes: K not a multiple of the block, even and odd block counts, N = 1, K below the
/// block, a 3-D weight, float16, a shared weight, a MatMul in an If branch, a Gather table.
#[test]
fn edge_shapes_match_ort() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, listing) = run_py("make_weight_only_models.py", &[dir.path().as_os_str()]);
    assert!(ok, "{listing}");
    for case in listing.lines() {
        let model = dir.path().join(format!("{case}.onnx"));
        let gather = case == "gather";
        for flags in [
            &["--bits", "4", "--block-size", "32"][..],
            &["--bits", "4", "--block-size", "16", "--symmetric"],
            &["--bits", "8", "--block-size", "64"],
            &["--bits", "2", "--block-size", "16"],
        ] {
            let mut ours = flags.to_vec();
            let mut theirs = flags.to_vec();
            // ORT's tool quantizes Gather at 4 bits only. onnxq reports a 2-bit Gather as
            // skipped, and writes 8-bit ones (weight_only_settings.rs checks those).
            if gather && flags[1] != "8" {
                ours.extend(["--op-types", "MatMul,Gather"]);
                if flags[1] == "4" {
                    theirs.extend(["--op-types", "MatMul,Gather"]);
                }
            }
            parity(&model, None, &ours, &theirs, &["--min-cosine", "0.8"]);
        }
    }
}

/// Weights of rank > 2 where A's rank is lower or unknown: MatMulNBits' output is reshaped to
/// MatMul's rank (not when inference knows A's rank is enough). ORT's tool writes another shape chain, so the node pattern differs; the weights
/// are the same, the output shapes are the float model's and the outputs ORT's model's.
#[test]
fn reshaped_outputs_match_ort() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, listing) = run_py(
        "make_weight_only_models.py",
        &[dir.path().as_os_str(), "--reshape".as_ref()],
    );
    assert!(ok, "{listing}");
    for case in listing.lines() {
        let model = dir.path().join(format!("{case}.onnx"));
        let (mine, orts) = (
            dir.path().join(format!("{case}-ours.onnx")),
            dir.path().join(format!("{case}-ort.onnx")),
        );
        quantize(
            &model,
            &mine,
            &["--mode", "weight-only", "--block-size", "32"],
        );
        ort(&model, &orts, &["--block-size", "32"]).unwrap();
        compare(&model, &mine, None, &["--min-cosine", "0.95"]);
        let reshapes = (onnxq_ir::load(&mine).unwrap().graph.nodes())
            .filter(|(_, n)| n.op_type() == "Reshape")
            .count();
        assert_eq!(
            reshapes > 0,
            case != "rank3inferred",
            "{case}: {reshapes} Reshape"
        );
        // ORT's model as the reference: equal weights give equal outputs (to float rounding).
        compare(&orts, &mine, None, &["--min-cosine", "0.999999"]);
    }
}

/// HQQ's proximal zero points reconstruct every weight better than RTN's min/max blocks (its
/// starting point), so the test fails if the solver does nothing.
#[test]
fn hqq_reconstructs_better_than_rtn() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["bytegpt", "minilm-l6-v2"] {
        let model = corpus_model(name);
        let mut errors = Vec::new();
        for algo in ["rtn", "hqq"] {
            let out = dir.path().join(format!("{name}-{algo}.onnx"));
            quantize(&model, &out, &["--mode", "weight-only", "--algo", algo]);
            let (ok, json) = run_py("weight_error.py", &[model.as_os_str(), out.as_os_str()]);
            assert!(ok, "{json}");
            let e: std::collections::BTreeMap<String, f64> = serde_json::from_str(&json).unwrap();
            errors.push(e);
        }
        assert!(!errors[0].is_empty());
        for (w, rtn) in &errors[0] {
            let hqq = errors[1][w];
            assert!(hqq < *rtn, "{name} `{w}`: HQQ {hqq} is not below RTN {rtn}");
        }
    }
}

/// The same model and settings give the same bytes (the kernels run in parallel), and the output
/// names onnxq and the settings used.
#[test]
fn deterministic_and_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("bytegpt");
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    for out in [&a, &b] {
        quantize(
            &model,
            out,
            &[
                "--mode",
                "weight-only",
                "--algo",
                "hqq",
                "--op-types",
                "MatMul,Gather",
            ],
        );
    }
    let bytes = std::fs::read(&a).unwrap();
    assert!(bytes == std::fs::read(&b).unwrap(), "two runs differ");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("onnxq.settings") && text.contains("\"mode\":\"weight-only\""));
}

/// Settings no kernel takes are refused before anything is written, each with its own hint.
#[test]
fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("bytegpt");
    let out = dir.path().join("out.onnx");
    let mut text = String::new();
    for flags in [
        &["--mode", "weight-only", "--bits", "3"][..],
        &["--mode", "weight-only", "--block-size", "48"],
        &["--mode", "weight-only", "--accuracy-level", "7"],
        &["--mode", "weight-only", "--algo", "gptq"],
        &["--mode", "weight-only", "--algo", "hqq", "--symmetric"],
        &["--mode", "weight-only", "--algo", "hqq", "--bits", "8"],
        &["--mode", "weight-only", "--exclude", "no_such_node"],
        &["--mode", "weight-only", "--per-channel"],
        &["--mode", "weight-only", "--op-types", "Conv"],
        &["--mode", "weight-only", "--quant-axes", "Gather"],
        &["--bits", "4"],
    ] {
        let stderr = refused(&model, &out, flags);
        text += &format!("$ {}\n{stderr}\n", flags.join(" "));
    }
    insta::assert_snapshot!(text);
}
