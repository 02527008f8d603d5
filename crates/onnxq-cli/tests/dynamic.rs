//! `onnxq quantize --mode dynamic` against ONNX Runtime 1.31.1's `quantize_dynamic` on the corpus.
//!
//! Where ORT's tool succeeds, onnxq's model must have the same node pattern, bit-identical
//! quantized weights, scales and zero points, pass the full checker, and give outputs within a tight
//! tolerance of ORT's model (`tests/py/compare_quantized.py`). Where ORT's tool fails, onnxq must
//! succeed with a model that runs and keeps the corpus metric.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the test failure we want"
)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

mod common;

use common::{compare, metric, onnxq, ort_quantize, quantize};
use onnxq_testkit::{corpus_feeds, corpus_model, python_ok, run_py};

/// The option sets of the parity test: (label, onnxq flags, ORT flags).
fn option_sets(exclude: &str) -> Vec<(&'static str, Vec<String>, Vec<String>)> {
    let same = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        ("defaults", vec![], vec![]),
        (
            "per-channel",
            same(&["--per-channel"]),
            same(&["--per-channel"]),
        ),
        (
            "reduce-range",
            same(&["--reduce-range"]),
            same(&["--reduce-range"]),
        ),
        (
            "uint8",
            same(&["--weight-type", "uint8"]),
            same(&["--weight-type", "uint8"]),
        ),
        (
            "exclude",
            vec!["--exclude".into(), exclude.into()],
            vec!["--exclude".into(), exclude.into()],
        ),
    ]
}

fn parity(model_name: &str, exclude: &str) {
    let dir = tempfile::tempdir().unwrap();
    let float = corpus_model(model_name);
    let feeds = corpus_feeds(model_name);
    for (label, ours_flags, ort_flags) in option_sets(exclude) {
        let ours = dir.path().join(format!("{label}-onnxq.onnx"));
        let orts = dir.path().join(format!("{label}-ort.onnx"));
        quantize(
            &float,
            &ours,
            &ours_flags.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        ort_quantize(
            "dynamic",
            &float,
            &orts,
            &ort_flags.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .unwrap_or_else(|e| panic!("{model_name} {label}: ORT's tool failed: {e}"));
        let text = compare(&float, &ours, Some(&orts), &feeds, &[]);
        assert!(
            text.contains("weights: ok"),
            "{model_name} {label}:\n{text}"
        );
    }
}

#[test]
fn minilm_matches_ort() {
    parity(
        "minilm-l6-v2",
        "/m/encoder/layer.0/attention/self/query/MatMul,/m/encoder/layer.3/output/dense/MatMul",
    );
}

#[test]
fn mobilenetv2_matches_ort() {
    parity(
        "mobilenetv2",
        "/features/features.0/features.0.0/Conv,/features/features.2/conv/conv.0/conv.0.0/Conv",
    );
}

#[test]
fn bytegpt_matches_ort() {
    parity("bytegpt", "node_MatMul_12,node_MatMul_57");
}

/// Metrics of the default settings: onnxq's never below ORT's. ORT's tool also runs ONNX shape
/// inference and keeps its value_info, with which ONNX Runtime fuses some float ops differently;
/// onnxq writes the same quantized graph without it, so metrics may differ in the last digits.
#[test]
fn corpus_metrics_not_below_ort() {
    let dir = tempfile::tempdir().unwrap();
    for (name, lower_is_better) in [
        ("mobilenetv2", false),
        ("minilm-l6-v2", false),
        ("bytegpt", true),
    ] {
        let ours = dir.path().join(format!("{name}-onnxq.onnx"));
        let orts = dir.path().join(format!("{name}-ort.onnx"));
        quantize(&corpus_model(name), &ours, &[]);
        ort_quantize("dynamic", &corpus_model(name), &orts, &[]).unwrap();
        let ((ol, o), (rl, r)) = (metric(name, &ours), metric(name, &orts));
        let worse = if lower_is_better { o - r } else { r - o };
        assert!(worse <= 1e-3, "{name}: onnxq `{ol}` is below ORT's `{rl}`");
    }
}

/// ORT's tool fails on digits-cnn (shape-inference error after its Gemm rewrite) and ppocr-rec
/// (weights in Constant nodes); onnxq quantizes both into models that run and keep their metric.
#[test]
fn models_ort_cannot_quantize() {
    let dir = tempfile::tempdir().unwrap();
    for (name, flags, floor) in [
        ("digits-cnn", vec![], 0.99),
        (
            "ppocr-rec",
            vec!["--conv-per-channel", "--per-channel"],
            0.98,
        ),
    ] {
        let float = corpus_model(name);
        assert!(
            ort_quantize("dynamic", &float, &dir.path().join("ort.onnx"), &[]).is_err(),
            "{name}: ORT's tool now succeeds"
        );
        let ours = dir.path().join(format!("{name}.onnx"));
        let msg = quantize(&float, &ours, &flags);
        assert!(!msg.contains("quantized 0 of"), "{name}: {msg}");
        compare(&float, &ours, None, &corpus_feeds(name), &[]);
        let (line, value) = metric(name, &ours);
        assert!(value >= floor, "{name}: {line}");
    }
}

/// silero-vad keeps every weight in Constant nodes inside If branches: ORT's tool silently does
/// nothing, and crashes with EnableSubgraph. onnxq says why it skips them, and quantizes them when
/// asked.
#[test]
fn silero_subgraphs() {
    let dir = tempfile::tempdir().unwrap();
    let float = corpus_model("silero-vad");
    let out = dir.path().join("plain.onnx");
    let msg = quantize(&float, &out, &[]);
    assert!(
        msg.contains("quantized 0 of") && msg.contains("pass --enable-subgraph"),
        "{msg}"
    );
    let sub = dir.path().join("sub.onnx");
    let msg = quantize(&float, &sub, &["--enable-subgraph", "--conv-per-channel"]);
    assert!(msg.contains("ConvInteger (per-channel scales) 12"), "{msg}");
    compare(&float, &sub, None, &corpus_feeds("silero-vad"), &[]);
    let (line, auc) = metric("silero-vad", &sub);
    assert!(auc >= 0.88, "{line}");
}

fn tiny_model_file(dir: &Path, edit: impl FnOnce(&mut onnxq_ir::proto::ModelProto)) -> PathBuf {
    use prost::Message;
    let mut m = onnxq_testkit::tiny_model();
    edit(&mut m);
    let p = dir.join("model.onnx");
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

fn rejected(args: &[&OsStr], expect: &[&str]) {
    let (ok, stderr) = onnxq(args);
    assert!(!ok, "{args:?} succeeded");
    for e in expect {
        assert!(
            stderr.contains(e),
            "{args:?}: message lacks `{e}`:\n{stderr}"
        );
    }
}

#[test]
fn bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    // Opset 9: refused with a hint.
    let m = tiny_model_file(dir.path(), |m| m.opset_import[0].version = Some(9));
    rejected(
        &[
            "quantize".as_ref(),
            m.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
        &["opset 9", "hint:"],
    );
    // An --include name that does not exist.
    let m = tiny_model_file(dir.path(), |_| {});
    rejected(
        &[
            "quantize".as_ref(),
            m.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--include".as_ref(),
            "mmm".as_ref(),
        ],
        &["`mmm` matches no node"],
    );
    // An unknown config key, and an ORT extra option onnxq does not know.
    for (text, want) in [
        ("per_chanel = true", "unknown field `per_chanel`"),
        ("[extra_options]\nFooBar = 1", "unknown field `FooBar`"),
    ] {
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, text).unwrap();
        rejected(
            &[
                "quantize".as_ref(),
                m.as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
                "--config".as_ref(),
                cfg.as_os_str(),
            ],
            &[want, "hint:"],
        );
    }
    assert!(!out.exists(), "wrote output despite errors");
}

#[test]
fn dynamic_b_is_a_reported_skip_and_config_works() {
    let dir = tempfile::tempdir().unwrap();
    // MatMul(x, w) with w fed as a graph input: B is an activation.
    let m = tiny_model_file(dir.path(), |m| {
        let g = m.graph.as_mut().unwrap();
        let w = g.initializer.remove(0);
        g.input.push(onnxq_testkit::f32_info("w", &w.dims));
    });
    let out = dir.path().join("out.onnx");
    let report = dir.path().join("r.json");
    let msg = quantize(&m, &out, &["--report", report.to_str().unwrap()]);
    assert!(msg.contains("quantized 0 of 1"), "{msg}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["nodes"][0]["node"], "mm");
    assert_eq!(r["nodes"][0]["status"], "skipped");
    assert!(
        r["nodes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("MatMulConstBOnly")
    );
    // The same through ORT's option name in a config file quantizes B at run time.
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[extra_options]\nMatMulConstBOnly = false\n").unwrap();
    let msg = quantize(&m, &out, &["--config", cfg.to_str().unwrap()]);
    assert!(
        msg.contains("quantized 1 of 1 candidate nodes (MatMulInteger 1)"),
        "{msg}"
    );
}

/// LSTM, com.microsoft Attention and EmbedLayerNormalization (generated by
/// `tests/py/make_contrib_models.py`; the corpus has no quantizable ones): same contrib ops, same
/// weights, identical outputs as ORT's tool, per tensor and per channel.
#[test]
fn contrib_ops_match_ort() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = run_py("make_contrib_models.py", &[dir.path().as_os_str()]);
    assert!(ok, "{text}");
    for name in ["lstm", "attention", "embed"] {
        let float = dir.path().join(format!("{name}.onnx"));
        let feeds = dir.path().join(format!("{name}.npz"));
        for flags in [&[][..], &["--per-channel"][..]] {
            let ours = dir.path().join(format!("{name}-onnxq.onnx"));
            let orts = dir.path().join(format!("{name}-ort.onnx"));
            let msg = quantize(&float, &ours, flags);
            assert!(msg.contains("quantized 1 of 1"), "{name}: {msg}");
            ort_quantize("dynamic", &float, &orts, flags).unwrap();
            let text = compare(&float, &ours, Some(&orts), &feeds, &[]);
            assert!(text.contains("weights: ok"), "{name} {flags:?}:\n{text}");
        }
    }
}

/// Cosine similarity of onnxq's model to the float model on `feeds`, from compare_quantized's report
/// (which also runs the full checker).
fn cos_to_float(float: &Path, ours: &Path, feeds: &Path) -> f64 {
    let report = ours.with_extension("json");
    let args: [&OsStr; 7] = [
        float.as_ref(),
        ours.as_ref(),
        "-".as_ref(),
        "--feeds".as_ref(),
        feeds.as_ref(),
        "--report".as_ref(),
        report.as_ref(),
    ];
    let (ok, text) = run_py("compare_quantized.py", &args);
    assert!(ok, "{text}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    r["checks"]["outputs"]["outputs"]
        .as_object()
        .unwrap()
        .values()
        .map(|o| o["cos_ours_float"].as_f64().unwrap())
        .fold(1.0, f64::min)
}

/// Writes `model` and feeds of `x` (`[samples, 1, 4]` random values) into `dir`.
fn write_with_feeds(dir: &Path, model: &onnxq_ir::proto::ModelProto) -> (PathBuf, PathBuf) {
    use prost::Message;
    let m = dir.join("float.onnx");
    std::fs::write(&m, model.encode_to_vec()).unwrap();
    let feeds = dir.join("feeds.npz");
    let script = "import sys, numpy as np; np.savez(sys.argv[1], x=np.random.default_rng(0).normal(size=(8, 1, 4)).astype(np.float32))";
    python_ok(&["-c".as_ref(), script.as_ref(), feeds.as_ref()]);
    (m, feeds)
}

fn weight(name: &str, dims: &[i64], seed: u32) -> onnxq_ir::proto::TensorProto {
    let n: i64 = dims.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    onnxq_testkit::f32_tensor(name, dims, &v)
}

/// Weights behind an Identity and weights shared by two nodes are quantized once, and the float
/// originals (and the Identity) disappear.
#[test]
fn identity_and_shared_weights() {
    use onnxq_testkit::{f32_info, node};
    let dir = tempfile::tempdir().unwrap();
    let mut m = onnxq_testkit::tiny_model();
    let g = m.graph.as_mut().unwrap();
    g.initializer = vec![weight("w", &[4, 4], 1)];
    g.node = vec![
        node("Identity", "id", &["w"], &["w_id"]),
        node("MatMul", "mm1", &["x", "w_id"], &["h"]),
        node("MatMul", "mm2", &["h", "w"], &["y"]),
    ];
    g.output = vec![f32_info("y", &[1, 4])];
    let (float, feeds) = write_with_feeds(dir.path(), &m);
    let ours = dir.path().join("q.onnx");
    let msg = quantize(&float, &ours, &[]);
    assert!(
        msg.contains("quantized 2 of 2 candidate nodes (MatMulInteger 2)"),
        "{msg}"
    );
    let q = onnxq_ir::load(&ours).unwrap();
    let names: Vec<&str> = q
        .graph
        .initializers()
        .iter()
        .map(|v| q.graph.value(*v).name())
        .collect();
    assert_eq!(
        names,
        ["w_quantized", "w_scale", "w_zero_point"],
        "one quantized copy, float weight gone"
    );
    assert!(
        q.graph.nodes().all(|(_, n)| n.op_type() != "Identity"),
        "the Identity is gone"
    );
    assert!(cos_to_float(&float, &ours, &feeds) > 0.999);
}

/// A Gemm (transB = 1) whose B is also read by a MatMul: ORT's tool transposes the shared
/// initializer in place, silently breaking the MatMul. onnxq gives the Gemm its own transposed copy.
#[test]
fn gemm_with_a_shared_weight() {
    use onnxq_testkit::{f32_info, node};
    let dir = tempfile::tempdir().unwrap();
    let mut m = onnxq_testkit::tiny_model();
    let g = m.graph.as_mut().unwrap();
    g.initializer = vec![weight("w", &[4, 4], 2), weight("c", &[4], 3)];
    let mut gemm = node("Gemm", "gemm", &["x", "w", "c"], &["h"]);
    gemm.attribute.push(onnxq_ir::proto::AttributeProto {
        name: Some("transB".into()),
        r#type: Some(2),
        i: Some(1),
        ..Default::default()
    });
    g.node = vec![gemm, node("MatMul", "mm", &["h", "w"], &["y"])];
    g.output = vec![f32_info("y", &[1, 4])];
    let (float, feeds) = write_with_feeds(dir.path(), &m);
    let ours = dir.path().join("q.onnx");
    let msg = quantize(&float, &ours, &[]);
    assert!(msg.contains("quantized 2 of 2"), "{msg}");
    let q = onnxq_ir::load(&ours).unwrap();
    assert!(
        q.graph.value_by_name("w_transposed_quantized").is_some()
            && q.graph.value_by_name("w_quantized").is_some()
    );
    assert!(cos_to_float(&float, &ours, &feeds) > 0.999);
    let orts = dir.path().join("ort.onnx");
    ort_quantize("dynamic", &float, &orts, &[]).unwrap();
    assert!(
        cos_to_float(&float, &orts, &feeds) < 0.99,
        "ORT's tool no longer breaks the shared weight"
    );
}

/// Opset 10 has no DynamicQuantizeLinear: raised to 11 when no op changed meaning, else refused.
#[test]
fn opset_10() {
    let dir = tempfile::tempdir().unwrap();
    let (float, feeds) = write_with_feeds(dir.path(), &{
        let mut m = onnxq_testkit::tiny_model();
        m.opset_import[0].version = Some(10);
        m
    });
    let ours = dir.path().join("q.onnx");
    let msg = quantize(&float, &ours, &[]);
    assert!(msg.contains("opset raised from 10 to 11"), "{msg}");
    assert_eq!(onnxq_ir::load(&ours).unwrap().opset(""), Some(11));
    assert!(cos_to_float(&float, &ours, &feeds) > 0.999);
    let mut m = onnxq_testkit::tiny_model();
    m.opset_import[0].version = Some(10);
    m.graph.as_mut().unwrap().node[2].op_type = Some("Clip".into());
    let (float, _) = write_with_feeds(dir.path(), &m);
    rejected(
        &[
            "quantize".as_ref(),
            float.as_os_str(),
            "-o".as_ref(),
            ours.as_os_str(),
        ],
        &["`Clip` changed between 10 and 11", "hint:"],
    );
}
