//! `onnxq quantize --mode static` (QDQ) against ONNX Runtime 1.31.1's `quantize_static` on the
//! corpus, both calibrating the same samples in the same order with ONNX Runtime as the engine.
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

use common::{compare, metric, ort_quantize, quantize};
use onnxq_testkit::{corpus_feeds, corpus_model};

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
const ENTROPY: Config = ("qdq-entropy", &["--method", "entropy"], &[]);
const PERCENTILE: Config = ("qdq-percentile", &["--method", "percentile"], &[]);

fn ours(float: &Path, feeds: &Path, out: &Path, flags: &[&str]) -> String {
    let data = feeds.to_str().unwrap();
    let mut args = vec!["--mode", "static", "--data", data, "--engine", "ort"];
    args.extend_from_slice(flags);
    quantize(float, out, &args)
}

fn parity(model: &str, configs: &[Config]) {
    let dir = tempfile::tempdir().unwrap();
    let (float, feeds) = (corpus_model(model), corpus_feeds(model));
    for (label, flags, compare_flags) in configs {
        let mine = dir.path().join(format!("{label}-onnxq.onnx"));
        let orts = dir.path().join(format!("{label}-ort.onnx"));
        ours(&float, &feeds, &mine, flags);
        let mut ort_flags = vec!["--data", feeds.to_str().unwrap()];
        ort_flags.extend_from_slice(flags);
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
        &[MINMAX, PER_CHANNEL, U8U8, INT16, ENTROPY, PERCENTILE],
    );
}

#[test]
fn mobilenetv2_matches_ort() {
    parity("mobilenetv2", &[MINMAX, PER_CHANNEL, U8U8, INT16]);
}

#[test]
fn bytegpt_matches_ort() {
    parity("bytegpt", &[MINMAX, PER_CHANNEL]);
}

#[test]
fn minilm_matches_ort() {
    parity("minilm-l6-v2", &[MINMAX, PER_CHANNEL]);
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
