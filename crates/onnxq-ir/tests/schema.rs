//! The hand-written ONNX schema matches the specification: every message, field number, label,
//! type and packed flag agrees with the descriptor in the `onnx` Python package.

#[test]
fn schema_matches_the_onnx_specification() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("onnx.desc");
    std::fs::write(&path, onnxq_ir::proto::FILE_DESCRIPTOR_SET).unwrap();
    let (ok, text) = onnxq_testkit::run_py("check_schema.py", &[path.as_os_str()]);
    assert!(ok, "{text}");
    assert!(text.starts_with("ok: "), "{text}");
}
