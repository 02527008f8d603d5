//! Real corpus models through `onnxq repack`, checked by the ONNX Runtime oracle: the rewritten
//! model is the same model (the `onnx` package's protos equal after canonical ordering, checker full
//! check passes) and computes bit-identical outputs on the corpus feeds in ONNX Runtime 1.31.1.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the test failure we want"
)]

use std::path::Path;
use std::process::Command;

use onnxq_testkit::{CORPUS, corpus_feeds, corpus_model, run_py};

fn onnxq(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "onnxq {args:?} failed:\n{stderr}");
    stderr
}

fn repack(input: &Path, output: &Path, extra: &[&str]) -> String {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "repack".as_ref(),
        input.as_ref(),
        "-o".as_ref(),
        output.as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    onnxq(&args)
}

fn assert_same_model(orig: &Path, new: &Path, feeds: &Path) {
    let (ok, text) = run_py(
        "compare_models.py",
        &[
            orig.as_ref(),
            new.as_ref(),
            "--feeds".as_ref(),
            feeds.as_ref(),
            "--samples".as_ref(),
            "2".as_ref(),
        ],
    );
    assert!(ok, "{} vs {}:\n{text}", orig.display(), new.display());
    assert!(text.contains("bit-identical"), "{text}");
}

#[test]
fn corpus_repack_inline_external_and_back() {
    let dir = tempfile::tempdir().unwrap();
    for name in CORPUS {
        let src = corpus_model(name);
        let feeds = corpus_feeds(name);
        let original = std::fs::read(&src).unwrap();

        let inline = dir.path().join(format!("{name}.onnx"));
        repack(&src, &inline, &["--inline"]);
        assert_eq!(
            std::fs::read(&inline).unwrap(),
            original,
            "{name}: inline repack is not byte-identical"
        );

        let ext_dir = dir.path().join(format!("{name}-ext"));
        std::fs::create_dir(&ext_dir).unwrap();
        let ext = ext_dir.join("model.onnx");
        let msg = repack(&src, &ext, &["--external-data", "--size-threshold", "1024"]);
        assert!(msg.contains("model.onnx.data"), "{name}: {msg}");
        assert!(ext_dir.join("model.onnx.data").is_file());
        assert!(
            std::fs::metadata(&ext).unwrap().len() < original.len() as u64 / 2,
            "{name}: weights did not move out"
        );
        assert_same_model(&src, &ext, &feeds);

        let back = dir.path().join(format!("{name}-back.onnx"));
        repack(&ext, &back, &["--inline"]);
        assert_eq!(
            std::fs::read(&back).unwrap(),
            original,
            "{name}: external -> inline is not byte-identical"
        );
        assert_eq!(
            std::fs::read(&src).unwrap(),
            original,
            "{name}: input modified"
        );
    }
}

/// The corpus metric scripts, run on the external-data copy, print exactly the float model's metric.
#[test]
fn corpus_metrics_unchanged_after_external_repack() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = onnxq_testkit::corpus_dir();
    for name in CORPUS {
        let out_dir = dir.path().join(name);
        std::fs::create_dir(&out_dir).unwrap();
        let ext = out_dir.join("model.onnx");
        repack(&corpus_model(name), &ext, &["--external-data"]);
        let script = corpus.join("eval").join(format!("{name}.py"));
        let out = Command::new(onnxq_testkit::python())
            .arg(&script)
            .arg(&ext)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = std::fs::read_to_string(corpus.join("data").join(name).join("float_metric.txt"))
            .unwrap();
        assert_eq!(
            stdout.trim(),
            want.trim(),
            "{name}: metric changed after repack"
        );
    }
}

#[test]
fn repack_keeps_layout_by_default_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let src = corpus_model("mobilenetv2");
    let ext = dir.path().join("a.onnx");
    repack(&src, &ext, &["--external-data", "weights.bin"]);
    // Input external -> output external by default, under the output's own data file name.
    let b = dir.path().join("b.onnx");
    repack(&ext, &b, &[]);
    let c = dir.path().join("c.onnx");
    repack(&ext, &c, &[]);
    assert!(dir.path().join("b.onnx.data").is_file());
    assert_eq!(
        std::fs::read(dir.path().join("b.onnx.data")).unwrap(),
        std::fs::read(dir.path().join("c.onnx.data")).unwrap()
    );
    let (b, c) = (std::fs::read(&b).unwrap(), std::fs::read(&c).unwrap());
    assert_ne!(b, c, "the two models name different data files");
    let b = String::from_utf8_lossy(&b).replace("b.onnx.data", "X.onnx.data");
    let c = String::from_utf8_lossy(&c).replace("c.onnx.data", "X.onnx.data");
    assert!(b == c, "same input and settings must give the same model");
    assert_same_model(
        &src,
        &dir.path().join("b.onnx"),
        &corpus_feeds("mobilenetv2"),
    );
}

/// `onnxq repack digits-cnn -o <tmp>/m.onnx <flags>` must fail with exit 2 and `expect` in its
/// message, writing nothing.
fn assert_repack_refused(flags: &[&str], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .arg("repack")
        .arg(corpus_model("digits-cnn"))
        .arg("-o")
        .arg(dir.path().join("m.onnx"))
        .args(flags)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(expect), "{stderr}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "wrote files"
    );
}

#[test]
fn repack_refuses_a_threshold_that_would_break_onnx_runtime() {
    assert_repack_refused(
        &["--external-data", "--size-threshold", "0"],
        "below the minimum of 1024",
    );
}

#[test]
fn repack_refuses_an_escaping_data_file_name() {
    assert_repack_refused(&["--external-data", "../w.data"], "contains `..`");
}

#[test]
fn inspect_reports_the_demo_model() {
    let model = onnxq_testkit::repo_root().join("examples/demo/model.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .arg("inspect")
        .arg(&model)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ir_version"], 8);
    assert_eq!(v["producer"], "onnxq-demo");
    assert_eq!(v["opset_imports"]["ai.onnx"], 17);
    assert_eq!(v["inputs"][0]["name"], "image");
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([1, 3, 16, 16]));
    assert_eq!(v["op_types"]["Conv"], 2);
    assert_eq!(v["quantizable"]["Conv"]["constant_weight"], 2);
    assert_eq!(v["quantizable"]["MatMul"]["constant_weight"], 1);
    assert!(
        v["initializers"]["by_dtype"]["float32"]["bytes"]
            .as_u64()
            .unwrap()
            > 1000
    );
    assert_eq!(v["external_data"], serde_json::json!([]));
}

#[test]
fn inspect_sees_subgraphs_and_constant_weights() {
    let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .arg("inspect")
        .arg(corpus_model("silero-vad"))
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["op_types"]["If"], 25);
    assert_eq!(v["subgraphs"], 50);
    // Every Conv weight is a Constant inside an If branch: still a constant weight.
    assert_eq!(
        v["quantizable"]["Conv"],
        serde_json::json!({"nodes": 12, "constant_weight": 12})
    );
    assert!(v["constant_nodes"]["count"].as_u64().unwrap() > 300);
}
