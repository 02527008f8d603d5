//! The opset converter (`onnxq_quant::upgrade`) against ONNX Runtime: tiny models at old opsets
//! with every converted op (`tests/py/make_upgrade_models.py`) and the corpus models, converted to
//! opset 21, pass `onnx.checker`'s full check and give ONNX Runtime's outputs of the original
//! (`tests/py/compare_upgrade.py`); models it cannot convert are refused, naming the node.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use onnxq_testkit::{CORPUS, corpus_feeds, corpus_model, run_py};

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Loads `model`, converts it to opset 21 and writes it to `out`.
fn convert(model: &Path, out: &Path) -> onnxq_quant::Result<onnxq_quant::UpgradeReport> {
    let mut m = onnxq_ir::load(model).unwrap();
    let report = onnxq_quant::upgrade(&mut m, 21)?;
    std::fs::write(out, m.to_bytes().unwrap()).unwrap();
    Ok(report)
}

fn compare(before: &Path, after: &Path, extra: &[&str]) -> String {
    let mut args: Vec<&OsStr> = vec![before.as_ref(), after.as_ref()];
    args.extend(extra.iter().map(OsStr::new));
    let (ok, text) = run_py("compare_upgrade.py", &args);
    assert!(ok, "{}:\n{text}", before.display());
    text
}

/// Every generated case converts to a model ONNX Runtime runs with the original's outputs, bit
/// for bit; the cases onnxq cannot convert are refused with the node's name and a hint.
#[test]
fn generated_models_convert_or_are_refused() {
    let dir = scratch("upgrade-generated");
    let (ok, listing) = run_py("make_upgrade_models.py", &[dir.as_os_str()]);
    assert!(ok, "{listing}");
    let mut refused = Vec::new();
    for line in listing.lines() {
        let (case, expect) = line.split_once(' ').unwrap();
        let model = dir.join(format!("{case}.onnx"));
        let out = dir.join(format!("{case}.21.onnx"));
        match (expect, convert(&model, &out)) {
            ("ok", Ok(report)) => {
                let before = dir.join(format!("{case}.before.onnx"));
                let before = if before.exists() { before } else { model };
                let text = compare(&before, &out, &[]);
                assert!(text.contains("outputs: ok"), "{case}: {text}");
                // These hold only nodes whose meaning did not change (an explicit last axis, no
                // axes attribute); every other case has a node to rewrite.
                let same = [
                    "compatible10",
                    "softmax11_last",
                    "squeeze11_all",
                    "reducel2_17_all",
                    "batchnorm13",
                ];
                assert_eq!(
                    report.rewritten.is_empty(),
                    same.contains(&case),
                    "{case}: {}",
                    report.summary()
                );
            }
            ("refuse", Err(e)) => {
                assert!(!out.exists(), "{case}: wrote a model");
                assert!(e.hint().is_some(), "{case}: no hint");
                refused.push(format!("{case}: {e}"));
            }
            (expect, got) => panic!(
                "{case}: expected {expect}, got {:?}",
                got.map(|r| r.summary())
            ),
        }
    }
    let text = refused.join("\n");
    for needle in [
        "opset 9",
        "`gn` (GroupNormalization)",
        "`rs` (Resize)",
        "`bn` (BatchNormalization)",
        "`drop` (Dropout)",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
}

/// The corpus models (opsets 12 to 18: Softmax, Squeeze, ReduceMean, Clip, Split, If bodies ...)
/// convert to opset 21 with the same ONNX Runtime outputs.
#[test]
fn corpus_models_convert() {
    let dir = scratch("upgrade-corpus");
    for name in CORPUS {
        let model = corpus_model(name);
        let out = dir.join(format!("{name}.onnx"));
        let report = convert(&model, &out).unwrap();
        let feeds = corpus_feeds(name);
        let feeds = feeds.to_str().unwrap();
        let text = compare(&model, &out, &["--feeds", feeds, "--rtol", "1e-6"]);
        assert!(text.contains("outputs: ok"), "{name}: {text}");
        // minilm-l6-v2 (opset 14) and ppocr-rec (12) hold nodes that changed meaning.
        if matches!(*name, "minilm-l6-v2" | "ppocr-rec") {
            assert!(!report.rewritten.is_empty(), "{name}: {}", report.summary());
        }
    }
}
