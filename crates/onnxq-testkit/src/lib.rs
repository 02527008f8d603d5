//! Test helpers shared by onnxq's crates: where the corpus and the Python oracle live, and a small
//! builder for hand-made (including deliberately broken) models.
//!
//! The oracle is ONNX Runtime 1.31.1 in a Python venv (`.ci/run` makes it at `<repo>/.venv`;
//! `ONNXQ_PYTHON` overrides). Tests that need it fail with a clear message when it is missing: CI
//! always has it, and a silently skipped oracle check would prove nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use onnxq_proto as pb;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|e| panic!("repo root: {e}"))
}

/// `../shared/corpus` beside the repository (`ONNXQ_CORPUS` overrides).
pub fn corpus_dir() -> PathBuf {
    std::env::var_os("ONNXQ_CORPUS")
        .map_or_else(|| repo_root().join("../shared/corpus"), PathBuf::from)
}

/// The corpus model names.
pub const CORPUS: &[&str] = &[
    "bytegpt",
    "digits-cnn",
    "minilm-l6-v2",
    "mobilenetv2",
    "ppocr-rec",
    "silero-vad",
];

/// Path of a corpus model, failing the test if it is absent.
pub fn corpus_model(name: &str) -> PathBuf {
    let p = corpus_dir().join("models").join(name).join("model.onnx");
    assert!(
        p.is_file(),
        "corpus model {} is missing: put the corpus at ../shared/corpus beside the repository, or \
         set ONNXQ_CORPUS to its folder, then run `bash scripts/test.sh`",
        p.display()
    );
    p
}

/// Path of a corpus model's calibration feeds (`calib.npz`).
pub fn corpus_feeds(name: &str) -> PathBuf {
    corpus_dir().join("data").join(name).join("calib.npz")
}

/// The Python interpreter with onnxruntime 1.31.1, onnx and numpy.
pub fn python() -> PathBuf {
    let p = std::env::var_os("ONNXQ_PYTHON")
        .map_or_else(|| repo_root().join(".venv/bin/python"), PathBuf::from);
    assert!(
        p.exists(),
        "the ONNX Runtime oracle is missing: {} does not exist. Run `bash .ci/run` once (it makes the venv) \
         or set ONNXQ_PYTHON to a python with onnxruntime==1.31.1, onnx and numpy",
        p.display()
    );
    p
}

/// The Python of the SmoothQuant oracle's side venv (`tests/py/requirements-inc.txt`: Intel
/// Neural Compressor 3.7.1 with numpy 1.26, which the main venv's numpy 2 excludes).
pub fn inc_python() -> PathBuf {
    let p = std::env::var_os("ONNXQ_INC_PYTHON")
        .map_or_else(|| repo_root().join(".venv-inc/bin/python"), PathBuf::from);
    assert!(
        p.exists(),
        "the SmoothQuant oracle is missing: {} does not exist. Run `bash scripts/test.sh` once (it \
         makes .venv-inc from tests/py/requirements-inc.txt) or set ONNXQ_INC_PYTHON",
        p.display()
    );
    p
}

/// Runs a script from `tests/py/` with the oracle's Python; returns (success, stdout + stderr).
pub fn run_py(script: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(python())
        .arg(repo_root().join("tests/py").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs the oracle's Python with `args` (a script path or `-c CODE` and its arguments), fails the
/// test with its stderr if it fails, and returns its stdout.
pub fn python_ok(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(python())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python: {e}"));
    assert!(
        out.status.success(),
        "python {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A float32 tensor proto with raw data.
pub fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        raw_data: Some(
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ),
        ..Default::default()
    }
}

/// A float32 graph input/output declaration with a fixed shape.
pub fn f32_info(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    pb::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(Value::DimValue(d)),
                            denotation: None,
                        })
                        .collect(),
                }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

/// A node proto.
pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> pb::NodeProto {
    pb::NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

/// A small valid model: `y = Relu(MatMul(x, w) + b)` with x [1,4], w [4,3], b [3], opset 17.
pub fn tiny_model() -> pb::ModelProto {
    let w: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.5).collect();
    pb::ModelProto {
        ir_version: Some(8),
        producer_name: Some("onnxq-testkit".into()),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(pb::GraphProto {
            name: Some("tiny".into()),
            node: vec![
                node("MatMul", "mm", &["x", "w"], &["xw"]),
                node("Add", "add", &["xw", "b"], &["z"]),
                node("Relu", "relu", &["z"], &["y"]),
            ],
            initializer: vec![
                f32_tensor("w", &[4, 3], &w),
                f32_tensor("b", &[3], &[0.1, -0.2, 0.3]),
            ],
            input: vec![f32_info("x", &[1, 4])],
            output: vec![f32_info("y", &[1, 3])],
            ..Default::default()
        }),
        ..Default::default()
    }
}
