//! `onnxq preprocess` (issue #13): on every corpus model and on small generated models with one
//! clean-up pattern each (`tests/py/make_preprocess_models.py`), the output passes the checker's
//! full check and runs in ONNX Runtime with outputs equal to the original's (relative difference
//! ≤ 1e-5, `tests/py/compare_preprocess.py`); each clean-up removes what it should (Conv +
//! BatchNormalization, Conv + per-channel Mul/Add folds, constant subgraphs (shape arithmetic,
//! transposed weights, casts) folded, MatMul + Add into Gemm, Identity, Dropout, dead nodes,
//! Constant nodes, duplicate initializers); inferred shapes land in value_info; the metadata ORT's quantizer looks for is set;
//! two runs are byte-identical; bad input writes nothing.

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::onnxq;
use onnxq_testkit::{CORPUS, corpus_dir, corpus_model, run_py};

/// `onnxq preprocess MODEL -o OUT FLAGS`; its stderr.
fn preprocess(model: &Path, out: &Path, flags: &[&str]) -> String {
    let mut args: Vec<&OsStr> = vec![
        "preprocess".as_ref(),
        model.as_ref(),
        "-o".as_ref(),
        out.as_ref(),
    ];
    args.extend(flags.iter().map(OsStr::new));
    let (ok, stderr) = onnxq(&args);
    assert!(ok, "preprocess {} failed:\n{stderr}", model.display());
    stderr
}

/// The comparison script's output; panics unless it passes.
fn compare(orig: &Path, new: &Path, feeds: &Path) -> String {
    let args: Vec<&OsStr> = vec![
        orig.as_ref(),
        new.as_ref(),
        "--feeds".as_ref(),
        feeds.as_ref(),
    ];
    let (ok, text) = run_py("compare_preprocess.py", &args);
    assert!(ok, "{}:\n{text}", new.display());
    text
}

#[test]
fn corpus_models_keep_their_outputs() {
    let dir = tempfile::tempdir().unwrap();
    for name in CORPUS {
        let out = dir.path().join(format!("{name}.onnx"));
        let text = preprocess(&corpus_model(name), &out, &[]);
        let feeds = corpus_dir().join(format!("data/{name}/calib.npz"));
        let cmp = compare(&corpus_model(name), &out, &feeds);
        if *name == "ppocr-rec" {
            assert!(text.contains("fold_conv_batchnorm 6"), "{text}");
            assert!(cmp.contains("'BatchNormalization': (6, 0)"), "{cmp}");
        }
        if *name != "silero-vad" {
            // Every node output of the main graph gets a type and shape.
            let line = text.lines().find(|l| l.starts_with("shapes:")).unwrap();
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[1], words[3], "{name}: {line}");
        }
        let m = onnxq_ir::load(&out).unwrap();
        let stamp = m
            .proto
            .metadata_props
            .iter()
            .find(|p| p.key() == "onnx.quant.pre_process");
        assert_eq!(
            stamp.map(|p| p.value()),
            Some("onnxruntime.quant"),
            "{name}"
        );
    }
}

#[test]
fn each_clean_up_rewrites_its_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, listing) = run_py("make_preprocess_models.py", &[dir.path().as_os_str()]);
    assert!(ok, "{listing}");
    let case = |name: &str| {
        let (model, out) = (
            dir.path().join(format!("{name}.onnx")),
            dir.path().join(format!("{name}.out.onnx")),
        );
        let text = preprocess(&model, &out, &[]);
        let cmp = compare(&model, &out, &dir.path().join(format!("{name}.npz")));
        (text, cmp)
    };
    let (text, cmp) = case("conv_bn");
    assert!(text.contains("fold_conv_batchnorm 2"), "{text}");
    assert!(cmp.contains("{'BatchNormalization': (2, 0)}"), "{cmp}");
    let (text, cmp) = case("cleanups");
    for want in [
        "constant_to_initializer 1",
        "remove_identity_dropout 2",
        "remove_dead_nodes 1",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(text.contains("merge_duplicate_initializers"), "{text}");
    assert!(
        cmp.contains(
            "{'Constant': (1, 0), 'Dropout': (1, 0), 'Identity': (1, 0), 'Sigmoid': (1, 0)}"
        ),
        "{cmp}"
    );
    let (text, cmp) = case("shape_fold");
    assert!(text.contains("fold_constants 4"), "{text}");
    assert!(
        cmp.contains("{'Concat': (1, 0), 'Gather': (1, 0), 'Shape': (1, 0), 'Unsqueeze': (1, 0)}"),
        "{cmp}"
    );
    let (text, cmp) = case("const_fold");
    assert!(text.contains("fold_constants 3"), "{text}");
    assert!(text.contains("fuse_matmul_add_gemm 1"), "{text}");
    assert!(
        cmp.contains("{'Add': (1, 0), 'Cast': (1, 0), 'Gemm': (0, 1), 'MatMul': (1, 0), 'Sqrt': (1, 0), 'Transpose': (1, 0)}"),
        "{cmp}"
    );
    // Every constant subgraph of the evaluator's ops folds away (ORT computes the same outputs).
    let (_, cmp) = case("eval_ops");
    let removed = |op: &str| {
        let at = cmp.find(&format!("'{op}': (")).map(|i| &cmp[i..]);
        at.and_then(|s| s.find(')').map(|j| s[..j].ends_with(", 0")))
            .unwrap_or(false)
    };
    for op in [
        "Gather",
        "Slice",
        "Split",
        "Transpose",
        "Reshape",
        "Expand",
        "Tile",
        "Range",
        "Div",
        "Where",
        "Unsqueeze",
        "Squeeze",
        "Flatten",
        "Concat",
        "Pow",
        "Exp",
        "Log",
        "Tanh",
        "Sigmoid",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Max",
        "ConstantOfShape",
        "Shape",
        "Size",
        "Neg",
        "Abs",
        "Cast",
    ] {
        assert!(removed(op), "{op} not folded: {cmp}");
    }
    let (text, cmp) = case("conv_affine");
    assert!(text.contains("fold_conv_mul_add 3"), "{text}");
    assert!(cmp.contains("{'Add': (1, 0), 'Mul': (3, 1)}"), "{cmp}");
    // --skip-optimization leaves the graph as it is and still writes shapes.
    let model = dir.path().join("cleanups.onnx");
    let out = dir.path().join("skip.onnx");
    let text = preprocess(&model, &out, &["--skip-optimization"]);
    assert!(!text.contains("clean-ups"), "{text}");
    let cmp = compare(&model, &out, &dir.path().join("cleanups.npz"));
    assert!(cmp.contains("ops: {}"), "{cmp}");
}

#[test]
fn ort_optimizer_runs_onnx_runtimes_basic_level() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, listing) = run_py("make_preprocess_models.py", &[dir.path().as_os_str()]);
    assert!(ok, "{listing}");
    let model = dir.path().join("conv_bn.onnx");
    let (out, report) = (dir.path().join("ort.onnx"), dir.path().join("ort.json"));
    let text = preprocess(
        &model,
        &out,
        &[
            "--ort-optimizer",
            "--opset",
            "19",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert!(
        text.contains("ONNX Runtime's basic-level optimizer"),
        "{text}"
    );
    assert!(text.contains("upgraded opset 17 -> 19"), "{text}");
    let cmp = compare(&model, &out, &dir.path().join("conv_bn.npz"));
    assert!(cmp.contains("{'BatchNormalization': (2, 0)}"), "{cmp}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["optimizer"], "onnxruntime-basic");
    assert_eq!(r["rules"], serde_json::json!([]));
    // ORT's optimizer cannot stand in for no optimization.
    let (ok, err) = onnxq(&[
        "preprocess".as_ref(),
        model.as_os_str(),
        "-o".as_ref(),
        dir.path().join("x.onnx").as_os_str(),
        "--ort-optimizer".as_ref(),
        "--skip-optimization".as_ref(),
    ]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}

#[test]
fn runs_are_byte_identical_and_bad_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("minilm-l6-v2");
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    preprocess(&model, &a, &[]);
    preprocess(&model, &b, &[]);
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "two runs differ"
    );
    // An opset below the model's cannot be reached by upgrading.
    let out = dir.path().join("bad.onnx");
    let args: Vec<&OsStr> = vec![
        "preprocess".as_ref(),
        model.as_ref(),
        "-o".as_ref(),
        out.as_ref(),
        "--opset".as_ref(),
        "9".as_ref(),
    ];
    let (ok, stderr) = onnxq(&args);
    assert!(!ok, "{stderr}");
    assert!(!out.exists(), "a refused run wrote a model");
    // Known dims that cannot meet (a Reshape of 3 elements into [2, -1]): refused, naming the
    // node, nothing written.
    let mut m = onnxq_testkit::tiny_model();
    let g = m.graph.as_mut().unwrap();
    g.node.push(onnxq_testkit::node(
        "Reshape",
        "reshape",
        &["y", "target"],
        &["r"],
    ));
    g.initializer.push(onnxq_proto::TensorProto {
        name: Some("target".into()),
        data_type: Some(7),
        dims: vec![2],
        raw_data: Some(
            [2i64, -1]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ),
        ..Default::default()
    });
    g.output[0].name = Some("r".into());
    g.output[0].r#type = None;
    let bad = dir.path().join("reshape.onnx");
    std::fs::write(&bad, prost::Message::encode_to_vec(&m)).unwrap();
    let args: Vec<&OsStr> = vec![
        "preprocess".as_ref(),
        bad.as_ref(),
        "-o".as_ref(),
        out.as_ref(),
    ];
    let (ok, stderr) = onnxq(&args);
    assert!(!ok && stderr.contains("node `reshape`"), "{stderr}");
    assert!(
        stderr.contains("cannot reshape 3 elements into [2, -1]"),
        "{stderr}"
    );
    assert!(!out.exists(), "a refused run wrote a model");
    // An op of a domain no rule knows is reported as not inferred; the model is still written.
    let mut m = onnxq_testkit::tiny_model();
    m.opset_import.push(onnxq_proto::OperatorSetIdProto {
        domain: Some("com.example".into()),
        version: Some(1),
    });
    m.graph.as_mut().unwrap().node[2].domain = Some("com.example".into());
    let custom = dir.path().join("custom.onnx");
    std::fs::write(&custom, prost::Message::encode_to_vec(&m)).unwrap();
    let text = preprocess(&custom, &out, &[]);
    assert!(
        text.contains("not inferred: relu (com.example:Relu)"),
        "{text}"
    );
    // The output may not overwrite the input.
    let args: Vec<&OsStr> = vec!["preprocess".as_ref(), a.as_ref(), "-o".as_ref(), a.as_ref()];
    let (ok, stderr) = onnxq(&args);
    assert!(!ok && stderr.contains("hint:"), "{stderr}");
}

/// quant_pre_process's argument names in `--config` carry over; an unknown key is refused.
#[test]
fn config_takes_ort_argument_names() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("mobilenetv2");
    let cfg = dir.path().join("pre.toml");
    std::fs::write(
        &cfg,
        "skip_optimization = true\nsave_as_external_data = true\n\
         external_data_location = \"weights.bin\"\nauto_merge = true\n",
    )
    .unwrap();
    let out = dir.path().join("m.onnx");
    let text = preprocess(&model, &out, &["--config", cfg.to_str().unwrap()]);
    assert!(
        !text.contains("clean-ups"),
        "skip_optimization ignored: {text}"
    );
    assert!(
        text.contains("auto_merge"),
        "no note for auto_merge: {text}"
    );
    assert!(dir.path().join("weights.bin").exists(), "{text}");
    compare(
        &model,
        &out,
        &corpus_dir().join("data/mobilenetv2/calib.npz"),
    );
    std::fs::write(&cfg, "skip_optimisation = true\n").unwrap();
    let bad = dir.path().join("bad.onnx");
    let args: Vec<&OsStr> = vec![
        "preprocess".as_ref(),
        model.as_ref(),
        "-o".as_ref(),
        bad.as_ref(),
        "--config".as_ref(),
        cfg.as_ref(),
    ];
    let (ok, stderr) = onnxq(&args);
    assert!(
        !ok && stderr.contains("unknown key `skip_optimisation`"),
        "{stderr}"
    );
    assert!(!bad.exists());
}
