//! The accuracy-recovery steps on real models (`../shared/corpus`), scored by the corpus metric
//! scripts: each step scores at least the plain static model with the same settings, and bias
//! correction and GPTQ weight rounding, on the model where rounding to nearest shifts layer
//! means (mobilenetv2's depthwise convolutions, per-tensor weights), gain a stated margin; `--auto` judged by the corpus
//! metric scores at least the plain model too.

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use common::{metric, quantize};
use onnxq_testkit::{corpus_dir, corpus_feeds, corpus_model, python};

/// The metric of `name` quantized statically with `flags` (`lower_is_better` flips the sign, so
/// a higher score is always better).
fn score(
    dir: &std::path::Path,
    name: &str,
    tag: &str,
    flags: &[&str],
    lower: bool,
) -> (f64, String) {
    let (float, feeds) = (corpus_model(name), corpus_feeds(name));
    let out = dir.join(format!("{name}-{tag}.onnx"));
    let data = feeds.to_str().unwrap();
    let mut args = vec!["--mode", "static", "--data", data, "--engine", "ort"];
    args.extend_from_slice(flags);
    quantize(&float, &out, &args);
    let (line, value) = metric(name, &out);
    (if lower { -value } else { value }, line)
}

#[test]
fn each_recovery_step_scores_at_least_the_plain_model() {
    let dir = tempfile::tempdir().unwrap();
    // (model, base flags, step, least gain of the metric, lower is better)
    for (name, base, step, gain, lower) in [
        (
            "mobilenetv2",
            &[][..],
            &["--bias-correction"][..],
            0.04,
            false,
        ),
        (
            "mobilenetv2",
            &["--per-channel"][..],
            &["--bias-correction"][..],
            0.0,
            false,
        ),
        (
            "digits-cnn",
            &[][..],
            &["--equalize", "--bias-correction"][..],
            0.0,
            false,
        ),
        ("bytegpt", &[][..], &["--smooth-quant"][..], 0.0, true),
        // Measured +0.09 (0.62 → 0.71): the depthwise kernels' taps nearly cancel.
        (
            "mobilenetv2",
            &[][..],
            &["--weight-rounding", "gptq"][..],
            0.05,
            false,
        ),
    ] {
        let (plain, plain_line) = score(dir.path(), name, "plain", base, lower);
        let flags: Vec<&str> = base.iter().chain(step).copied().collect();
        let (recovered, line) = score(dir.path(), name, "step", &flags, lower);
        assert!(
            recovered >= plain + gain,
            "{name} {flags:?}: `{line}` against plain `{plain_line}` (want +{gain})"
        );
    }
}

#[test]
fn auto_scores_at_least_the_plain_model() {
    let dir = tempfile::tempdir().unwrap();
    let name = "bytegpt";
    let (plain, plain_line) = score(dir.path(), name, "plain", &[], true);
    // The plain model's own bits per byte as the bound: met or not, the plain configuration is
    // a candidate, so what is written scores at least as well.
    let script = corpus_dir().join(format!("eval/{name}.py"));
    let cmd = format!("'{}' '{}' {{model}}", python().display(), script.display());
    let target = format!("metric<={}", -plain);
    let flags = [
        "--auto",
        "--target",
        &target,
        "--eval-cmd",
        &cmd,
        "--budget",
        "30s",
    ];
    let (auto, line) = score(dir.path(), name, "auto", &flags, true);
    assert!(
        auto >= plain,
        "{name} --auto: `{line}` against plain `{plain_line}`"
    );
}
