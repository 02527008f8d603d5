//! `onnxq quantize --mode static` (QDQ and QOperator) against ONNX Runtime 1.31.1's
//! `quantize_static` on the corpus, both calibrating the same samples in the same order with ONNX
//! Runtime as the engine.
//!
//! Where ORT's tool succeeds: the same node pattern, bit-identical quantized constants, scales and
//! zero points, the full checker passes, and outputs within a tight tolerance of ORT's model
//! (`tests/py/compare_quantized.py`). Two documented differences are normalised by the comparison:
//! tensors held in `Constant` nodes are stored quantized (ORT quantizes them at run time with a
//! Q/DQ pair; `--fold-constants`), and 16-bit types use the `com.microsoft` Q/DQ ops where ORT's
//! tool converts the model to opset 21 (`--ignore-qdq-domain`).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the test failure we want"
)]

mod common;

use std::path::Path;

use common::{compare, metric, onnxq, ort_quantize, quantize};
use onnxq_testkit::{corpus_feeds, corpus_model, python_ok, repo_root, run_py};

/// (label, flags for both tools, extra comparison flags).
type Config = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const MINMAX: Config = ("qdq-minmax", &[], &[]);
const PER_CHANNEL: Config = ("qdq-minmax-per-channel", &["--per-channel"], &[]);
const U8U8: Config = (
    "u8u8",
    &["--activation-type", "uint8", "--weight-type", "uint8"],
    &[],
);
const INT16: Config = (
    "16-bit-activations",
    &["--activation-type", "int16"],
    &["--ignore-qdq-domain"],
);
const INT4_PER_CHANNEL: Config = (
    "int4-weights-per-channel",
    &["--weight-type", "int4", "--per-channel"],
    &[],
);
const REDUCE_RANGE: Config = ("reduce-range", &["--reduce-range"], &[]);
const SYMMETRIC: Config = (
    "activation-symmetric",
    &["--extra", "ActivationSymmetric=true"],
    &[],
);
const DEDICATED: Config = (
    "dedicated-pairs",
    &["--extra", "DedicatedQDQPair=true"],
    &[],
);
const KEEP_RELU: Config = (
    "keep-relu",
    &["--extra", "QDQKeepRemovableActivations=true"],
    &[],
);
const MIN_REAL_RANGE: Config = (
    "minimum-real-range",
    &["--extra", "MinimumRealRange=2.0"],
    &[],
);
const RESTRICTED: Config = (
    "restricted-asymmetric",
    &[
        "--activation-type",
        "uint8",
        "--extra",
        "ActivationRestrictedAsymmetric=true",
    ],
    &[],
);
const QOP: Config = ("qop-minmax", &["--format", "qoperator"], &[]);
const QOP_PER_CHANNEL: Config = (
    "qop-minmax-per-channel",
    &["--format", "qoperator", "--per-channel"],
    &[],
);
const ENTROPY: Config = ("qdq-entropy", &["--method", "entropy"], &[]);
const PERCENTILE: Config = ("qdq-percentile", &["--method", "percentile"], &[]);
const DISTRIBUTION: Config = ("qdq-distribution", &["--method", "distribution"], &[]);

/// Flags for ORT's tool alone, by configuration. Distribution ranges are ±max|x|, so no Relu/Clip
/// output range clips at 0: onnxq keeps those nodes, ORT's tool removes them and lets negative
/// values through (digits-cnn: cosine 0.36 to the float logits); onnxq's model is ORT's with
/// `QDQKeepRemovableActivations` (cosine 0.9998).
fn ort_only(label: &str) -> &'static [&'static str] {
    match label {
        "qdq-distribution" => &["--extra", "QDQKeepRemovableActivations=true"],
        _ => &[],
    }
}

fn ours(float: &Path, feeds: &Path, out: &Path, flags: &[&str]) -> String {
    let data = feeds.to_str().unwrap();
    let mut args = vec!["--mode", "static", "--data", data, "--engine", "ort"];
    args.extend_from_slice(flags);
    quantize(float, out, &args)
}

/// The first float output's SQNR of `quant` against `float` on `feeds` (`tests/py/sqnr.py`), or
/// the script's output when a model does not run.
fn sqnr(float: &Path, quant: &Path, feeds: &Path) -> Result<f64, String> {
    let (ok, text) = run_py("sqnr.py", &[float.as_ref(), quant.as_ref(), feeds.as_ref()]);
    if !ok {
        return Err(text);
    }
    let line = text.lines().find(|l| l.contains("sqnr_db=")).unwrap();
    Ok(line.rsplit('=').next().unwrap().parse().unwrap())
}

fn parity(model: &str, configs: &[Config]) {
    parity_with(model, configs, &[]);
}

/// `parity` with `extra` flags given to both tools in every configuration.
fn parity_with(model: &str, configs: &[Config], extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (float, feeds) = (corpus_model(model), corpus_feeds(model));
    for (label, flags, compare_flags) in configs {
        let flags: Vec<&str> = flags.iter().chain(extra).copied().collect();
        let mine = dir.path().join(format!("{label}-onnxq.onnx"));
        let orts = dir.path().join(format!("{label}-ort.onnx"));
        ours(&float, &feeds, &mine, &flags);
        let mut ort_flags = vec!["--data", feeds.to_str().unwrap()];
        ort_flags.extend_from_slice(&flags);
        ort_flags.extend_from_slice(ort_only(label));
        ort_quantize("static", &float, &orts, &ort_flags)
            .unwrap_or_else(|e| panic!("{model} {label}: ORT's tool failed: {e}"));
        let mut cflags = vec!["--fold-constants"];
        cflags.extend_from_slice(compare_flags);
        let text = compare(&float, &mine, Some(&orts), &feeds, &cflags);
        assert!(
            text.contains("pattern: ok") && text.contains("weights: ok"),
            "{model} {label}:\n{text}"
        );
    }
}

#[test]
fn digits_cnn_matches_ort() {
    parity(
        "digits-cnn",
        &[
            MINMAX,
            PER_CHANNEL,
            U8U8,
            INT16,
            ENTROPY,
            PERCENTILE,
            DISTRIBUTION,
            KEEP_RELU,
            MIN_REAL_RANGE,
            RESTRICTED,
            QOP,
            QOP_PER_CHANNEL,
        ],
    );
}

#[test]
fn mobilenetv2_matches_ort() {
    parity(
        "mobilenetv2",
        &[
            MINMAX,
            PER_CHANNEL,
            U8U8,
            INT16,
            INT4_PER_CHANNEL,
            REDUCE_RANGE,
            SYMMETRIC,
            DEDICATED,
            QOP,
            QOP_PER_CHANNEL,
        ],
    );
}

/// The attention logits and masks of bytegpt reach -inf: ORT's tool quantizes them with an infinite
/// scale (bits per byte 5.22 against 2.68 in float), onnxq leaves them float (2.68). The parity
/// runs exclude the four Add and Softmax nodes around them in both tools.
#[test]
fn bytegpt_matches_ort() {
    let exclude = "node_add_1,node_add_4,node_add_7,node_add_10,\
                   node_softmax,node_softmax_1,node_softmax_2,node_softmax_3";
    parity_with(
        "bytegpt",
        &[MINMAX, PER_CHANNEL, QOP, QOP_PER_CHANNEL],
        &["--exclude", exclude],
    );
}

/// Where ORT's tool writes a model that loses most of the float model's quality, onnxq's does not:
/// bytegpt's infinite attention ranges and minilm-l6-v2's `finfo.min` attention masks (left float:
/// spearman 0.84 against ORT's 0.62, float 0.88), and ppocr-rec's Constant-node weights (per
/// channel: onnxq quantizes them as weights, ORT as per-tensor activations). Each row: onnxq's gap
/// to float at most `ours` of the float metric, ORT's gap over `ratio` times onnxq's.
#[test]
fn corpus_metrics_where_ort_degrades() {
    let dir = tempfile::tempdir().unwrap();
    for (name, flags, lower_is_better, ours_max, ratio) in [
        ("bytegpt", &[][..], true, 0.01, 10.0),
        ("ppocr-rec", &["--per-channel"][..], false, 0.01, 10.0),
        ("minilm-l6-v2", &[][..], false, 0.05, 5.0),
    ] {
        let (float, feeds) = (corpus_model(name), corpus_feeds(name));
        let mine = dir.path().join(format!("{name}-onnxq.onnx"));
        let orts = dir.path().join(format!("{name}-ort.onnx"));
        ours(&float, &feeds, &mine, flags);
        let mut ort_flags = vec!["--data", feeds.to_str().unwrap()];
        ort_flags.extend_from_slice(flags);
        ort_quantize("static", &float, &orts, &ort_flags).unwrap();
        let ((ol, o), (rl, r), (fl, f)) = (
            metric(name, &mine),
            metric(name, &orts),
            metric(name, &float),
        );
        let (gap_ours, gap_ort) = if lower_is_better {
            (o - f, r - f)
        } else {
            (f - o, f - r)
        };
        assert!(
            gap_ours < ours_max * f.abs() && gap_ort > ratio * gap_ours.max(1e-3),
            "{name}: float `{fl}`, onnxq `{ol}`, ORT `{rl}`"
        );
    }
}

/// ppocr-rec holds its weights and biases in Constant nodes: per tensor, onnxq stores them quantized
/// with ORT's parameters (the comparison's `--fold-constants` reads ORT's run-time Q/DQ of a
/// constant, and its float Constant-node biases, as onnxq stores them). Per channel the models
/// differ on purpose (see `corpus_metrics_where_ort_degrades`).
#[test]
fn ppocr_rec_matches_ort() {
    parity("ppocr-rec", &[MINMAX, U8U8]);
}

/// minilm-l6-v2's attention adds a `finfo.min` mask (-3.4e38): onnxq leaves those tensors float
/// (see `corpus_metrics_where_ort_degrades`); the parity runs exclude the attention Add and Softmax
/// nodes in both tools.
#[test]
fn minilm_matches_ort() {
    let exclude: Vec<String> = (0..6)
        .flat_map(|l| {
            ["Add", "Softmax"].map(|op| format!("/m/encoder/layer.{l}/attention/self/{op}"))
        })
        .collect();
    parity_with(
        "minilm-l6-v2",
        &[MINMAX, PER_CHANNEL, QOP, QOP_PER_CHANNEL],
        &["--exclude", &exclude.join(",")],
    );
}

/// Same models as ORT's, so the same metric: checked on the two image models.
#[test]
fn corpus_metrics_equal_ort() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["digits-cnn", "mobilenetv2"] {
        let (float, feeds) = (corpus_model(name), corpus_feeds(name));
        let mine = dir.path().join(format!("{name}-onnxq.onnx"));
        let orts = dir.path().join(format!("{name}-ort.onnx"));
        ours(&float, &feeds, &mine, &["--per-channel"]);
        ort_quantize(
            "static",
            &float,
            &orts,
            &["--data", feeds.to_str().unwrap(), "--per-channel"],
        )
        .unwrap();
        let ((ol, o), (rl, r)) = (metric(name, &mine), metric(name, &orts));
        assert!((o - r).abs() <= 1e-9, "{name}: onnxq `{ol}`, ORT `{rl}`");
    }
}

/// The tiny models of `tests/py/make_static_op_models.py` (with `flags`) in a fresh folder, and
/// the list of their names it printed.
fn tiny_models(flags: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let script = repo_root().join("tests/py/make_static_op_models.py");
    let mut args: Vec<&std::ffi::OsStr> = vec![script.as_ref(), dir.path().as_ref()];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    let listed = python_ok(&args);
    (dir, listed)
}

/// One tiny model per op of the static registry (`tests/py/make_static_op_models.py`): each is
/// quantized (or, for Relu/Clip, folded into its producer's range) and keeps its output within
/// 30 dB SQNR of the float model's (ArgMax: the same indices on 95 % of values).
#[test]
fn every_registered_op_quantizes_with_high_sqnr() {
    let (dir, listed) = tiny_models(&[]);
    let ops: Vec<&str> = listed.lines().collect();
    let on_request = onnxq_quant::ops::static_ops::ON_REQUEST_OPS;
    for (op, _) in onnxq_quant::ops::static_ops::STATIC_OPS
        .iter()
        .chain(on_request)
    {
        if *op != "EmbedLayerNormalization" {
            assert!(ops.contains(op), "no tiny model for {op}");
        }
    }
    for op in ops {
        let case = dir.path().join(op);
        let (float, feeds) = (case.join("model.onnx"), case.join("calib.npz"));
        let (quant, report) = (case.join("q.onnx"), case.join("report.json"));
        let report_arg = report.to_str().unwrap();
        let op_types = format!("Mul,{op}");
        let mut flags = vec!["--report", report_arg];
        if on_request.iter().any(|(t, _)| *t == op) {
            flags.extend(["--op-types", op_types.as_str()]);
        }
        ours(&float, &feeds, &quant, &flags);
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let entry = r["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"] == format!("the_{op}"))
            .unwrap_or_else(|| panic!("{op}: no report entry"));
        assert!(
            entry["status"] == "quantized",
            "{op} not quantized: {entry}"
        );
        let (ok, text) = run_py("sqnr.py", &[float.as_ref(), quant.as_ref(), feeds.as_ref()]);
        assert!(ok, "{op}: {text}");
        // stdout then stderr (ONNX Runtime's warnings): the metric lines carry `=`.
        for line in text
            .lines()
            .filter(|l| l.contains("sqnr_db=") || l.contains("agree="))
        {
            let (_, v) = line.split_once('=').unwrap();
            let v: f64 = v.parse().unwrap();
            let ok = if line.contains("agree=") {
                v >= 0.95
            } else {
                v >= 30.0
            };
            assert!(ok, "{op}: {line}");
        }
    }
}

/// The same tiny models in the QOperator format match ORT's tool (QLinear ops, direct 8-bit ops,
/// Pad with the zero point, ArgMax on quantized data, QGemm, ...); Where also with
/// ForceQuantizeNoInputCheck, which ORT needs for QLinearWhere. The folded Relu and Clip writing
/// a graph output compute the same bits, but ORT names their parameters after the producer's
/// tensor, so only the outputs are compared there.
#[test]
fn every_registered_op_matches_ort_in_qoperator() {
    let (dir, listed) = tiny_models(&[]);
    let force: &[&str] = &["--extra", "ForceQuantizeNoInputCheck=true"];
    let cases = listed
        .lines()
        .map(|op| (op, &[][..]))
        .chain([("Where", force)]);
    for (op, extra) in cases {
        let case = dir.path().join(op);
        let (float, feeds) = (case.join("model.onnx"), case.join("calib.npz"));
        let (mine, orts) = (case.join("qop.onnx"), case.join("qop-ort.onnx"));
        let mut flags = vec!["--format", "qoperator"];
        flags.extend_from_slice(extra);
        ours(&float, &feeds, &mine, &flags);
        let mut ort_flags = vec!["--data", feeds.to_str().unwrap()];
        ort_flags.extend_from_slice(&flags);
        ort_quantize("static", &float, &orts, &ort_flags)
            .unwrap_or_else(|e| panic!("{op}: ORT's tool failed: {e}"));
        if matches!(op, "Relu" | "Clip") {
            let args: [&std::ffi::OsStr; 5] = [
                float.as_ref(),
                mine.as_ref(),
                orts.as_ref(),
                "--feeds".as_ref(),
                feeds.as_ref(),
            ];
            let (_, text) = run_py("compare_quantized.py", &args);
            assert!(text.contains("outputs: ok"), "{op}:\n{text}");
        } else {
            let text = compare(&float, &mine, Some(&orts), &feeds, &["--fold-constants"]);
            assert!(text.contains("pattern: ok"), "{op}:\n{text}");
        }
    }
}

/// Where ONNX Runtime's tool writes a wrong or invalid model (reference §11), onnxq's stays close
/// to the float model: a Gemm with alpha = 2, beta = 0.5 (ORT drops beta: about 7 dB), per-channel
/// weights at opset 12 (ORT writes `axis` attributes that opset lacks; ONNX Runtime refuses the
/// model) and a Relu whose producer has another consumer (kept; ORT's QDQ gets this right too, its
/// QOperator format does not).
#[test]
fn where_ort_goes_wrong() {
    let (dir, listed) = tiny_models(&["--ort-bugs"]);
    for case in listed.lines() {
        let d = dir.path().join(case);
        let (float, feeds) = (d.join("model.onnx"), d.join("calib.npz"));
        let (mine, orts) = (d.join("q.onnx"), d.join("ort.onnx"));
        let flags: &[&str] = if case == "PerChannelOpset12" {
            &["--per-channel"]
        } else {
            &[]
        };
        ours(&float, &feeds, &mine, flags);
        let db = sqnr(&float, &mine, &feeds).unwrap();
        assert!(db >= 30.0, "{case}: onnxq {db} dB");
        let mut ort_flags = vec!["--data", feeds.to_str().unwrap()];
        ort_flags.extend_from_slice(flags);
        ort_quantize("static", &float, &orts, &ort_flags).unwrap();
        let theirs = sqnr(&float, &orts, &feeds);
        match case {
            "GemmAlphaBeta" => assert!(theirs.unwrap() < 15.0, "ORT's beta bug is gone?"),
            "PerChannelOpset12" => assert!(theirs.is_err(), "ORT's model now loads?"),
            _ => assert!(theirs.unwrap() >= 30.0),
        }
        // QOperator: ORT's QGemm drops alpha and beta (-6 dB) and its Relu removal ignores the
        // producer's other consumer (9 dB).
        if case != "PerChannelOpset12" {
            let (mine, orts) = (d.join("qop.onnx"), d.join("qop-ort.onnx"));
            ours(&float, &feeds, &mine, &["--format", "qoperator"]);
            let db = sqnr(&float, &mine, &feeds).unwrap();
            assert!(db >= 30.0, "{case} QOperator: onnxq {db} dB");
            let ort_flags = ["--data", feeds.to_str().unwrap(), "--format", "qoperator"];
            ort_quantize("static", &float, &orts, &ort_flags).unwrap();
            let theirs = sqnr(&float, &orts, &feeds).unwrap();
            assert!(
                theirs < 15.0,
                "{case} QOperator: ORT's bug is gone? {theirs} dB"
            );
        }
    }
}

/// ORT's `TensorQuantOverrides`, given to both tools: a range on the input, a type on an
/// activation, fixed parameters on a tensor a Relu folding renames (ignored by both, and onnxq
/// says so), a per-channel weight, an unsigned asymmetric weight and a bias quantized as a weight.
#[test]
fn overrides_match_ort() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = r#"{"input": [{"rmin": -0.5, "rmax": 2.5}],
        "relu": [{"quant_type": "QUInt8", "symmetric": false}],
        "getitem_3": [{"scale": 0.05, "zero_point": 3}],
        "f.3.weight": [{"axis": 0, "symmetric": true}],
        "f.7.weight": [{"quant_type": "QUInt8", "symmetric": false}],
        "head.4.bias": [{"quant_type": "QInt8"}]}"#;
    let file = dir.path().join("overrides.json");
    std::fs::write(&file, overrides).unwrap();
    let (float, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let (mine, orts) = (dir.path().join("q.onnx"), dir.path().join("o.onnx"));
    let stderr = ours(
        &float,
        &feeds,
        &mine,
        &["--overrides", file.to_str().unwrap()],
    );
    assert!(
        stderr.contains("override of `getitem_3` does not apply"),
        "{stderr}"
    );
    let extra = format!("TensorQuantOverrides={}", overrides.replace('\n', ""));
    ort_quantize(
        "static",
        &float,
        &orts,
        &["--data", feeds.to_str().unwrap(), "--extra", &extra],
    )
    .unwrap();
    let text = compare(&float, &mine, Some(&orts), &feeds, &[]);
    assert!(text.contains("weights: ok"), "{text}");
}

/// Every override is checked before anything is quantized; errors name the tensor and the key.
#[test]
fn bad_overrides_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (float, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let cases = [
        (
            r#"{"nope": [{"symmetric": true}]}"#,
            "no tensor of the model",
        ),
        (r#"{"relu": [{"scale": 0.1}]}"#, "go together"),
        (
            r#"{"relu": [{"scale": 0.1, "zero_point": 0, "rmin": 0.0}]}"#,
            "cannot be combined",
        ),
        (r#"{"relu": [{"reduce_range": true}]}"#, "constants only"),
        (r#"{"relu": [{"axis": 1}]}"#, "constants only"),
        (r#"{"f.0.weight": [{"axis": 4}]}"#, "out of range"),
        (
            r#"{"f.0.weight": [{"axis": 0}, {"axis": 0}, {"axis": 0}]}"#,
            "3 entries for 32 channels",
        ),
        (
            r#"{"relu": [{"quant_type": "QFloat9"}]}"#,
            "unknown quant_type",
        ),
        (
            r#"{"relu": [{"quant_type": "QFLOAT8E4M3FN"}]}"#,
            "QFLOAT8E4M3FN is not supported",
        ),
        (
            r#"{"relu": [{"convert": {"symmetric": true}}]}"#,
            "`quant_type` is required",
        ),
        (
            r#"{"relu": [{"convert": {"quant_type": "QInt8"}}]}"#,
            "the tensor's own type",
        ),
        (
            r#"{"relu": [{"convert": {"quant_type": "QInt16", "reduce_range": true}}]}"#,
            "constants only",
        ),
        (
            r#"{"relu": [{"convert": {"quant_type": "QInt16", "recv_nodes": ["node_relu_1"]}}]}"#,
            "no node named `node_relu_1` reads the tensor",
        ),
        (
            r#"{"relu": [{"convert": {"quant_type": "QInt16", "recv_nodes": []}}]}"#,
            "recv_nodes is empty",
        ),
        (
            r#"{"f.0.weight": [{"convert": {"quant_type": "QInt16"}}]}"#,
            "applies to activations",
        ),
        (
            r#"{"relu": [{"convert": {"quant_type": "QInt16", "scale": 0.1}}]}"#,
            "go together",
        ),
        (
            r#"{"relu": [{"scale": 0.1, "zero_point": 300}]}"#,
            "outside",
        ),
        (
            r#"{"f.0.weight": [{"scale": 0.1, "zero_point": 200}]}"#,
            "give quant_type to choose",
        ),
        (r#"{"relu": [{"bogus": 1}]}"#, "unknown field"),
    ];
    for (i, (json, expect)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("o{i}.json"));
        std::fs::write(&file, json).unwrap();
        let out = dir.path().join(format!("q{i}.onnx"));
        let (ok, stderr) = onnxq(&[
            "quantize".as_ref(),
            float.as_ref(),
            "-o".as_ref(),
            out.as_ref(),
            "--mode".as_ref(),
            "static".as_ref(),
            "--data".as_ref(),
            feeds.as_ref(),
            "--overrides".as_ref(),
            file.as_ref(),
        ]);
        assert!(!ok && stderr.contains(expect), "{json}: {stderr}");
        assert!(!out.exists(), "{json}: wrote a model");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Mixed precision (`convert` overrides) matches ORT's tool in every layout it writes: a graph
/// output read partly in the converted type, a tensor read partly, one read only converted (whose
/// Transpose shares the converted parameters), a graph output read converted by all, one read by
/// nothing, fixed converted parameters (tests/py/make_mixed_precision_model.py); on digits-cnn a
/// converted Conv input (its int32 bias uses the converted scale), a converted MaxPool input, and
/// a converted Relu output (the Relu then stays, as in ORT). 16-bit types use the com.microsoft
/// Q/DQ ops where ORT raises the opset to 21. QOperator refuses `convert` with a clear error.
#[test]
fn mixed_precision_matches_ort() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny");
    python_ok(&[
        repo_root()
            .join("tests/py/make_mixed_precision_model.py")
            .as_ref(),
        tiny.as_ref(),
    ]);
    let digits = dir.path().join("digits-overrides.json");
    std::fs::write(
        &digits,
        r#"{"relu": [{"convert": {"quant_type": "QInt16"}}],
            "relu_1": [{"convert": {"quant_type": "QUInt8", "symmetric": false}}],
            "logits": [{"convert": {"quant_type": "QInt16", "rmin": -20.0, "rmax": 20.0}}]}"#,
    )
    .unwrap();
    let cases = [
        (
            tiny.join("model.onnx"),
            tiny.join("calib.npz"),
            tiny.join("overrides.json"),
        ),
        (
            corpus_model("digits-cnn"),
            corpus_feeds("digits-cnn"),
            digits,
        ),
    ];
    for (i, (float, feeds, overrides)) in cases.iter().enumerate() {
        let (mine, orts) = (
            dir.path().join(format!("q{i}.onnx")),
            dir.path().join(format!("o{i}.onnx")),
        );
        ours(
            float,
            feeds,
            &mine,
            &["--overrides", overrides.to_str().unwrap()],
        );
        let json = std::fs::read_to_string(overrides)
            .unwrap()
            .replace('\n', "");
        let extra = format!("TensorQuantOverrides={json}");
        ort_quantize(
            "static",
            float,
            &orts,
            &["--data", feeds.to_str().unwrap(), "--extra", &extra],
        )
        .unwrap();
        let text = compare(float, &mine, Some(&orts), feeds, &["--ignore-qdq-domain"]);
        assert!(
            text.contains("pattern: ok") && text.contains("weights: ok"),
            "{text}"
        );
    }
    let (ok, stderr) = onnxq(&[
        "quantize".as_ref(),
        cases[0].0.as_ref(),
        "-o".as_ref(),
        dir.path().join("qop.onnx").as_ref(),
        "--mode".as_ref(),
        "static".as_ref(),
        "--format".as_ref(),
        "qoperator".as_ref(),
        "--data".as_ref(),
        cases[0].1.as_ref(),
        "--overrides".as_ref(),
        cases[0].2.as_ref(),
    ]);
    assert!(!ok && stderr.contains("QDQ format only"), "{stderr}");
}

/// The same input and settings give a byte-identical model, and quantizing with a ranges file from
/// `onnxq calibrate` gives the same model as calibrating in-process.
#[test]
fn deterministic_and_ranges_file_equals_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let (float, feeds) = (corpus_model("mobilenetv2"), corpus_feeds("mobilenetv2"));
    let (a, b, c) = (
        dir.path().join("a.onnx"),
        dir.path().join("b.onnx"),
        dir.path().join("c.onnx"),
    );
    ours(&float, &feeds, &a, &["--per-channel"]);
    ours(&float, &feeds, &b, &["--per-channel"]);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
    let ranges = dir.path().join("ranges.json");
    let (ok, stderr) = onnxq(&[
        "calibrate".as_ref(),
        float.as_ref(),
        "--data".as_ref(),
        feeds.as_ref(),
        "--engine".as_ref(),
        "ort".as_ref(),
        "-o".as_ref(),
        ranges.as_ref(),
    ]);
    assert!(ok, "{stderr}");
    quantize(
        &float,
        &c,
        &[
            "--mode",
            "static",
            "--per-channel",
            "--ranges",
            ranges.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&c).unwrap());
}

/// With the embedded tract engine (nothing but cargo) the static model is as good as with ONNX
/// Runtime: its scales differ in the last bits (the engines' float sums differ), its SQNR to the
/// float model within 0.5 dB of the ORT-calibrated model's.
#[test]
fn tract_engine_static_model() {
    let dir = tempfile::tempdir().unwrap();
    let (float, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let (with_ort, with_tract) = (dir.path().join("o.onnx"), dir.path().join("t.onnx"));
    ours(&float, &feeds, &with_ort, &["--per-channel"]);
    let data = feeds.to_str().unwrap();
    quantize(
        &float,
        &with_tract,
        &[
            "--mode",
            "static",
            "--per-channel",
            "--data",
            data,
            "--engine",
            "tract",
        ],
    );
    let (o, t) = (
        sqnr(&float, &with_ort, &feeds).unwrap(),
        sqnr(&float, &with_tract, &feeds).unwrap(),
    );
    assert!(
        (o - t).abs() <= 0.5,
        "ORT-calibrated {o} dB, tract-calibrated {t} dB"
    );
}

/// silero-vad keeps its network inside an `If`: static mode, like ORT's tool (which fails on this
/// model), quantizes the main graph only; onnxq says so and writes a model that runs unchanged.
#[test]
fn silero_vad_subgraphs_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (float, feeds) = (corpus_model("silero-vad"), corpus_feeds("silero-vad"));
    let out = dir.path().join("q.onnx");
    let stderr = ours(&float, &feeds, &out, &[]);
    assert!(
        stderr.contains("the subgraphs of If_0 stay float"),
        "{stderr}"
    );
    let ((ol, o), (fl, f)) = (metric("silero-vad", &out), metric("silero-vad", &float));
    assert!((o - f).abs() <= 1e-9, "onnxq `{ol}`, float `{fl}`");
}
