//! `onnxq inspect --shapes` (issue #13): every node output of minilm-l6-v2 inferred, with the
//! attention heads' symbolic shapes resolved through the model's shape subgraphs; a node of an
//! op with no rule is reported by name and leaves its outputs unknown, without failing; a declared
//! shape that contradicts inference is reported with both shapes. A model ONNX Runtime would
//! refuse at load (a float16 weight into a float32 MatMul, a domain without an opset import, an
//! attribute the op's schema does not know) is refused by `quantize` and `preprocess`, naming the
//! node, with nothing written, and copied by `repack` with a warning. onnxq's own quantized models
//! pass that check.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

use std::path::Path;
use std::process::Command;

use onnxq_testkit::{corpus_model, f32_info, node, tiny_model};
use prost::Message;

fn shapes(model: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .args(["inspect", "--shapes", "--json"])
        .arg(model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn shape_of(s: &serde_json::Value, name: &str) -> serde_json::Value {
    let v = s["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name);
    v.unwrap_or_else(|| panic!("no {name}")).clone()
}

/// Pads computed from constants through ops that move elements (Reshape, Transpose), as
/// exporters write them (silero-vad's STFT padding): the evaluator gives inference their
/// contents, so the Pad's output shape is known.
#[test]
fn contents_of_small_constant_subgraphs_are_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let i64s = |name: &str, dims: &[i64], v: &[i64]| onnxq_proto::TensorProto {
        name: Some(name.into()),
        data_type: Some(7),
        dims: dims.to_vec(),
        raw_data: Some(
            v.iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ),
        ..Default::default()
    };
    let mut m = tiny_model();
    let g = m.graph.as_mut().unwrap();
    g.node = vec![
        node("Reshape", "r1", &["c", "s32"], &["c32"]),
        node("Transpose", "t", &["c32"], &["ct"]),
        node("Reshape", "r2", &["ct", "flat"], &["pads"]),
        node("Pad", "pad", &["x", "pads"], &["y"]),
    ];
    g.initializer = vec![
        i64s("c", &[6], &[0, 0, 1, 0, 0, 2]),
        i64s("s32", &[2], &[3, 2]),
        i64s("flat", &[1], &[-1]),
    ];
    g.input = vec![f32_info("x", &[1, 1, 4])];
    g.output[0].r#type = None;
    let path = dir.path().join("pads.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let s = shapes(&path);
    assert_eq!(
        shape_of(&s, "y")["shape"],
        serde_json::json!(["1", "2", "6"]),
        "{s}"
    );
}

#[test]
fn minilm_is_inferred_whole_with_symbolic_dims() {
    let s = shapes(&corpus_model("minilm-l6-v2"));
    assert_eq!(s["inferred"], s["node_outputs"], "{}", s["unknown"]);
    let v = shape_of(&s, "/m/encoder/layer.0/attention/self/Reshape_output_0");
    assert_eq!(v["elem"], "float32");
    assert_eq!(
        v["shape"],
        serde_json::json!(["batch", "sequence", "12", "32"])
    );
    assert!(
        s["conflicts"].as_array().unwrap().is_empty(),
        "{}",
        s["conflicts"]
    );
}

#[test]
fn unknown_ops_and_conflicts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_model();
    let g = m.graph.as_mut().unwrap();
    // An op of a domain nothing knows after the Relu, and a value_info for `z` (really [1, 3])
    // that says [1, 5].
    let mut custom = node("Mystery", "mystery", &["y"], &["w2"]);
    custom.domain = Some("example.custom".into());
    g.node.push(custom);
    g.output.push(f32_info("w2", &[]));
    g.output[1].r#type = None;
    g.value_info.push(f32_info("z", &[1, 5]));
    m.opset_import.push(onnxq_proto::OperatorSetIdProto {
        domain: Some("example.custom".into()),
        version: Some(1),
    });
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let s = shapes(&path);
    let unknown = s["unknown"].as_array().unwrap();
    assert_eq!(unknown.len(), 1, "{s}");
    assert_eq!(unknown[0]["node"], "mystery");
    assert!(
        unknown[0]["reason"].as_str().unwrap().contains("no rule"),
        "{s}"
    );
    assert_eq!(shape_of(&s, "w2")["shape"], serde_json::Value::Null);
    let conflicts = s["conflicts"].as_array().unwrap();
    // z's, and y's downstream of it (y = Relu(z) is declared [1, 3]).
    assert_eq!(conflicts.len(), 2, "{s}");
    assert_eq!(conflicts[0]["value"], "z");
    assert!(
        conflicts[0]["declared"]
            .as_str()
            .unwrap()
            .contains("[1, 5]"),
        "{s}"
    );
    assert!(
        conflicts[0]["inferred"]
            .as_str()
            .unwrap()
            .contains("[1, 3]"),
        "{s}"
    );
    // The model's own shape is kept for what follows.
    assert_eq!(shape_of(&s, "z")["shape"], serde_json::json!(["1", "5"]));
}

/// Runs onnxq with `args`; (success, stderr).
fn run(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn models_onnx_runtime_would_refuse_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The MatMul's weight is float16, its input float32.
    let mut m = tiny_model();
    let g = m.graph.as_mut().unwrap();
    g.initializer[0].data_type = Some(10);
    g.initializer[0].raw_data = Some(vec![0u8; 24].into());
    let f16 = dir.path().join("f16.onnx");
    std::fs::write(&f16, m.encode_to_vec()).unwrap();
    // A node of a domain the model imports no opset for.
    let mut m = tiny_model();
    m.graph.as_mut().unwrap().node[2].domain = Some("com.example".into());
    let domain = dir.path().join("domain.onnx");
    std::fs::write(&domain, m.encode_to_vec()).unwrap();
    // A Relu with an attribute Relu does not have.
    let mut m = tiny_model();
    m.graph.as_mut().unwrap().node[2]
        .attribute
        .push(onnxq_proto::AttributeProto {
            name: Some("alpha".into()),
            r#type: Some(1),
            f: Some(0.5),
            ..Default::default()
        });
    let attr = dir.path().join("attr.onnx");
    std::fs::write(&attr, m.encode_to_vec()).unwrap();
    for (model, node, what) in [
        (&f16, "mm", "element type"),
        (&domain, "relu", "no opset import"),
        (&attr, "relu", "no attribute `alpha`"),
    ] {
        for cmd in [&["quantize", "--mode", "dynamic"][..], &["preprocess"][..]] {
            let out = dir.path().join("out.onnx");
            let mut args: Vec<&std::ffi::OsStr> = cmd.iter().map(|s| s.as_ref()).collect();
            args.extend([model.as_os_str(), "-o".as_ref(), out.as_os_str()]);
            let (ok, stderr) = run(&args);
            assert!(!ok, "{cmd:?} accepted {}: {stderr}", model.display());
            assert!(
                stderr.contains(&format!("node `{node}`")) && stderr.contains(what),
                "{stderr}"
            );
            assert!(stderr.contains("hint:"), "{stderr}");
            assert!(!out.exists(), "{cmd:?} wrote a model");
        }
        let out = dir.path().join("copy.onnx");
        let args: Vec<&std::ffi::OsStr> = vec![
            "repack".as_ref(),
            model.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ];
        let (ok, stderr) = run(&args);
        assert!(ok && stderr.contains("would refuse"), "{stderr}");
        assert!(out.exists());
    }
}

/// onnxq's own outputs, with the com.microsoft ops it writes (MatMulNBits, MatMulInteger and
/// DynamicQuantizeLinear, QLinear ops), are inferred whole: the models ORT's symbolic inference
/// stops on.
#[test]
fn quantized_models_are_inferred_whole() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("bytegpt", &["--mode", "weight-only", "--block-size", "32"]),
        ("minilm-l6-v2", &["--mode", "dynamic"]),
        ("mobilenetv2", &["--mode", "dynamic", "--conv-per-channel"]),
    ];
    for (name, flags) in cases {
        let (model, out) = (corpus_model(name), dir.path().join(format!("{name}.onnx")));
        let mut args: Vec<&std::ffi::OsStr> = vec!["quantize".as_ref(), model.as_os_str()];
        args.extend(["-o".as_ref(), out.as_os_str()]);
        args.extend(flags.iter().map(std::ffi::OsStr::new));
        let (ok, stderr) = run(&args);
        assert!(ok, "{stderr}");
        let s = shapes(&out);
        assert_eq!(s["inferred"], s["node_outputs"], "{name}: {}", s["unknown"]);
        assert_no_problems(&out);
    }
}

/// Asserts that onnxq's input check finds nothing in the model at `path`.
fn assert_no_problems(path: &Path) {
    let model = onnxq_ir::load(path).unwrap();
    let inf = onnxq_infer::infer(&model).unwrap();
    let problems = onnxq_infer::check(&model, &inf);
    assert!(problems.is_empty(), "{}: {problems:?}", path.display());
}

/// The other output formats (static QDQ and QOperator, weight-only QDQ) pass the input check
/// too (they are what ONNX Runtime loads), and are inferred whole.
#[test]
fn quantized_models_pass_the_input_check() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = onnxq_testkit::corpus_feeds("digits-cnn");
    let feeds = feeds.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("digits-cnn", &["--mode", "static", "--data", feeds]),
        (
            "digits-cnn",
            &["--mode", "static", "--format", "qoperator", "--data", feeds],
        ),
        ("bytegpt", &["--mode", "weight-only", "--format", "qdq"]),
    ];
    for (i, (name, flags)) in cases.iter().enumerate() {
        let (model, out) = (corpus_model(name), dir.path().join(format!("{i}.onnx")));
        let mut args: Vec<&std::ffi::OsStr> = vec!["quantize".as_ref(), model.as_os_str()];
        args.extend(["-o".as_ref(), out.as_os_str()]);
        args.extend(flags.iter().map(std::ffi::OsStr::new));
        let (ok, stderr) = run(&args);
        assert!(ok, "{name} {flags:?}: {stderr}");
        assert_no_problems(&out);
        // QLinearConv, QGemm, QLinearConcat, ... are inferred like their float ops.
        let s = shapes(&out);
        assert_eq!(
            s["inferred"], s["node_outputs"],
            "{name} {flags:?}: {}",
            s["unknown"]
        );
    }
}
