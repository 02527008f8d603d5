//! Bad input: every case must give a clear `error:` naming what is wrong, exit code 2, no panic,
//! and leave no output file (not even a temporary one) behind.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the test failure we want"
)]

use std::path::Path;
use std::process::Command;

use onnxq_ir::proto as pb;
use onnxq_testkit::{f32_tensor, node, tiny_model};
use prost::Message;

/// Runs `onnxq repack model.onnx -o out.onnx` and `onnxq inspect model.onnx` in a folder holding
/// `files`, and checks both fail cleanly with every `expect` fragment in the message.
fn assert_rejected(files: &[(&str, Vec<u8>)], expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let before = listing(dir.path());
    // Relative paths from inside the model's folder, as users type them.
    for args in [
        ["repack", "model.onnx", "-o", "out.onnx"].as_slice(),
        &["inspect", "model.onnx"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
            .args(args)
            .current_dir(&work)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: want exit 2, got {:?}; stderr:\n{stderr}",
            out.status
        );
        assert!(
            stderr.starts_with("error: "),
            "{args:?}: no `error:` line:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "{args:?}: panicked:\n{stderr}"
        );
        for e in expect {
            assert!(
                stderr.contains(e),
                "{args:?}: message lacks `{e}`:\n{stderr}"
            );
        }
        assert!(out.stdout.is_empty(), "{args:?}: wrote to stdout on error");
        assert_eq!(listing(dir.path()), before, "{args:?}: left files behind");
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            out.extend(
                listing(&p)
                    .into_iter()
                    .map(|s| format!("{}/{s}", e.file_name().to_string_lossy())),
            );
        } else {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

fn model_bytes(m: &pb::ModelProto) -> Vec<u8> {
    m.encode_to_vec()
}

fn with_graph(edit: impl FnOnce(&mut pb::GraphProto)) -> Vec<u8> {
    let mut m = tiny_model();
    edit(m.graph.as_mut().unwrap());
    model_bytes(&m)
}

/// The tiny model with initializer `w` moved to external data with these keys.
fn external_w(keys: &[(&str, &str)]) -> Vec<u8> {
    with_graph(|g| {
        let w = &mut g.initializer[0];
        w.raw_data = None;
        w.data_location = Some(pb::tensor_proto::DataLocation::External as i32);
        w.external_data = keys
            .iter()
            .map(|(k, v)| pb::StringStringEntryProto {
                key: Some((*k).into()),
                value: Some((*v).into()),
            })
            .collect();
    })
}

const M: &str = "work/model.onnx";

#[test]
fn truncated_file() {
    let mut b = model_bytes(&tiny_model());
    b.truncate(b.len() / 2);
    assert_rejected(
        &[(M, b)],
        &["model.onnx", "not a valid ONNX model", "hint:"],
    );
}

#[test]
fn random_bytes() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let b: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    assert_rejected(&[(M, b)], &["not a valid ONNX model"]);
}

#[test]
fn empty_file() {
    assert_rejected(&[(M, Vec::new())], &["the file is empty"]);
}

#[test]
fn wrong_field_type() {
    // ModelProto.graph (field 7) written as a varint instead of a message.
    assert_rejected(
        &[(M, vec![0x08, 0x08, 0x38, 0x01])],
        &["not a valid ONNX model", "wire type"],
    );
}

#[test]
fn missing_graph() {
    let mut m = tiny_model();
    m.graph = None;
    assert_rejected(&[(M, model_bytes(&m))], &["has no graph"]);
}

#[test]
fn missing_ir_version() {
    let mut m = tiny_model();
    m.ir_version = None;
    assert_rejected(&[(M, model_bytes(&m))], &["ir_version"]);
}

#[test]
fn node_cycle() {
    let b = with_graph(|g| {
        g.node = vec![
            node("Add", "a", &["x", "q"], &["p"]),
            node("Relu", "b", &["p"], &["q"]),
            node("Relu", "c", &["q"], &["y"]),
        ];
    });
    assert_rejected(&[(M, b)], &["cycle", "node `"]);
}

#[test]
fn duplicate_value_names() {
    let b = with_graph(|g| g.node.push(node("Relu", "again", &["x"], &["xw"])));
    assert_rejected(&[(M, b)], &["`xw`", "defined more than once"]);
}

#[test]
fn duplicate_initializer_names() {
    let b = with_graph(|g| {
        let w = g.initializer[0].clone();
        g.initializer.push(w);
    });
    assert_rejected(&[(M, b)], &["initializer `w` is defined twice"]);
}

#[test]
fn dangling_input() {
    let b = with_graph(|g| g.node[1].input[1] = "nowhere".into());
    assert_rejected(&[(M, b)], &["node `add` (Add) reads `nowhere`"]);
}

#[test]
fn undefined_graph_output() {
    let b = with_graph(|g| g.output[0].name = Some("ghost".into()));
    assert_rejected(&[(M, b)], &["graph output `ghost`"]);
}

#[test]
fn unknown_dtype() {
    let b = with_graph(|g| g.initializer[1].data_type = Some(99));
    assert_rejected(&[(M, b)], &["initializer `b`", "unsupported data type 99"]);
}

#[test]
fn raw_data_size_mismatch() {
    let b = with_graph(|g| g.initializer[1] = f32_tensor("b", &[3], &[1.0, 2.0]));
    assert_rejected(&[(M, b)], &["initializer `b`", "12 bytes", "holds 8 bytes"]);
}

#[test]
fn huge_declared_dimension() {
    let b = with_graph(|g| g.initializer[1].dims = vec![1 << 40, 1 << 40]);
    assert_rejected(&[(M, b)], &["initializer `b`", "overflows"]);
    let b = with_graph(|g| g.initializer[1].dims = vec![1 << 40]);
    assert_rejected(
        &[(M, b)],
        &["initializer `b`", "1099511627776 float32 elements"],
    );
}

#[test]
fn negative_dimension() {
    let b = with_graph(|g| g.initializer[1].dims = vec![-3]);
    assert_rejected(&[(M, b)], &["initializer `b`", "negative dimension"]);
}

#[test]
fn constant_node_tensor_is_checked() {
    let b = with_graph(|g| {
        let mut c = node("Constant", "k", &[], &["kv"]);
        let mut t = f32_tensor("", &[2], &[1.0]);
        t.dims = vec![2];
        c.attribute.push(pb::AttributeProto {
            name: Some("value".into()),
            r#type: Some(4),
            t: Some(t),
            ..Default::default()
        });
        g.node.insert(0, c);
    });
    assert_rejected(
        &[(M, b)],
        &["attribute `value` of node `k`", "holds 4 bytes"],
    );
}

#[test]
fn external_data_file_missing() {
    assert_rejected(
        &[(M, external_w(&[("location", "w.bin")]))],
        &[
            "initializer `w` of `",
            "cannot open data file `w.bin`: No such file",
            "hint:",
        ],
    );
}

#[test]
fn external_data_past_end_of_file() {
    let files = [
        (
            M,
            external_w(&[("location", "w.bin"), ("offset", "16"), ("length", "48")]),
        ),
        ("work/w.bin", vec![0u8; 48]),
    ];
    assert_rejected(
        &files,
        &["offset 16 + length 48 runs past the end of `w.bin` (48 bytes)"],
    );
}

#[test]
fn external_data_length_disagrees_with_shape() {
    let files = [
        (M, external_w(&[("location", "w.bin"), ("length", "44")])),
        ("work/w.bin", vec![0u8; 48]),
    ];
    assert_rejected(&files, &["initializer `w`", "48 bytes", "holds 44 bytes"]);
}

#[test]
fn external_data_bad_offset() {
    let files = [
        (M, external_w(&[("location", "w.bin"), ("offset", "-5")])),
        ("work/w.bin", vec![0u8; 48]),
    ];
    assert_rejected(&files, &["`offset` is `-5`, not a byte count"]);
}

#[test]
fn external_data_path_traversal() {
    let files = [
        (M, external_w(&[("location", "../secret.bin")])),
        ("secret.bin", vec![0u8; 48]),
    ];
    assert_rejected(&files, &["`../secret.bin` is absolute or contains `..`"]);
}

#[test]
fn external_data_absolute_path() {
    assert_rejected(
        &[(M, external_w(&[("location", "/etc/hostname")]))],
        &["`/etc/hostname` is absolute"],
    );
}

#[cfg(unix)]
#[test]
fn external_data_link_out_of_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.bin"), vec![0u8; 48]).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.bin"), work.join("w.bin")).unwrap();
    std::fs::write(
        work.join("model.onnx"),
        external_w(&[("location", "w.bin")]),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .arg("inspect")
        .arg(work.join("model.onnx"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("outside the model's folder"), "{stderr}");
}

#[test]
fn input_is_a_folder_or_missing() {
    for path in [".", "does-not-exist.onnx"] {
        let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
            .args(["inspect", path])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.starts_with(&format!("error: cannot read `{path}`")),
            "{stderr}"
        );
    }
}

#[test]
fn output_equal_to_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("model.onnx");
    let original = model_bytes(&tiny_model());
    std::fs::write(&m, &original).unwrap();
    let same = dir.path().join(".").join("model.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .arg("repack")
        .arg(&m)
        .arg("-o")
        .arg(&same)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is the input model"), "{stderr}");
    assert_eq!(std::fs::read(&m).unwrap(), original, "input modified");
}
