//! onnxq-infer on small generated models (`tests/py/make_infer_models.py`) for what has its own
//! parsing or scoping: Einsum equations (explicit and implicit outputs, `...`, contractions, a
//! repeated letter) and a model-local function called with and without its attribute. Each graph
//! output's shape equals what ONNX's own shape inference gives (`tests/py/infer_oracle.py`),
//! symbolic dims by name; where ONNX gives nothing (an Einsum whose `...` dims broadcast), the
//! test says what the spec gives.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

use onnxq_testkit::run_py;

/// A fact's dims as the oracle writes them: numbers, names, or null.
fn dims_of(f: &onnxq_infer::Fact) -> serde_json::Value {
    let dims: Vec<serde_json::Value> = (f.shape.as_ref().unwrap().iter())
        .map(|d| match d.value() {
            Some(v) => v.into(),
            None => d.to_string().into(),
        })
        .collect();
    dims.into()
}

#[test]
fn einsum_and_local_functions_agree_with_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, listing) = run_py("make_infer_models.py", &[dir.path().as_os_str()]);
    assert!(ok, "{listing}");
    let mut compared = 0;
    for file in listing.lines() {
        let path = dir.path().join(file);
        let model = onnxq_ir::load(&path).unwrap();
        let ours = onnxq_infer::infer(&model).unwrap();
        assert!(ours.unknown.is_empty(), "{file}: {:?}", ours.unknown);
        let (ok, json) = run_py("infer_oracle.py", &[path.as_os_str()]);
        assert!(ok, "{json}");
        let oracle: serde_json::Value = serde_json::from_str(&json).unwrap();
        for p in model.graph.outputs() {
            let name = model.graph.value(p.value).name();
            let mine = dims_of(&ours.facts[name]);
            match oracle["values"].get(name) {
                Some(v) => {
                    assert_eq!(mine, v[1], "{file}: `{name}`");
                    compared += 1;
                }
                // ONNX does not broadcast Einsum's `...` dims; the spec's result:
                None if file == "einsum_ellipsis.onnx" => {
                    assert_eq!(mine, serde_json::json!([2, 6, 3, 5]), "{file}");
                }
                None => panic!("{file}: the oracle has no shape for `{name}`"),
            }
        }
    }
    assert!(compared >= 9, "only {compared} outputs compared");
}
