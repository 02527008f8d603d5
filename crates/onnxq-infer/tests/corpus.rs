//! onnxq-infer on every corpus model against ONNX's own shape inference
//! (`tests/py/infer_oracle.py`: `infer_shapes(strict_mode=True, data_prop=True)`, lenient where
//! strict mode stops) and ONNX Runtime's `SymbolicShapeInference`: wherever an oracle infers a
//! value, onnxq agrees on its element type, its rank and every dim the oracle knows as a number,
//! and onnxq infers at least as many node outputs of the main graph as either.

#![expect(
    clippy::print_stderr,
    reason = "the coverage report is for the test log"
)]

use onnxq_testkit::{CORPUS, corpus_model, run_py};

/// Checks that wherever `oracle` gives a value a type and shape, onnxq's agree (element type,
/// rank, every dim the oracle knows as a number); returns how many values were compared.
fn agree(
    name: &str,
    ours: &onnxq_infer::Inference,
    oracle: &serde_json::Map<String, serde_json::Value>,
) -> usize {
    let mut both = 0;
    for (value, v) in oracle {
        let Some(fact) = ours.facts.get(value) else {
            continue;
        };
        let (Some(elem), Some(dims)) = (v[0].as_i64(), v[1].as_array()) else {
            continue;
        };
        let Some(shape) = &fact.shape else { continue };
        both += 1;
        let mine = onnxq_infer::describe(fact);
        if let Some(e) = fact.elem {
            assert_eq!(
                i64::from(e),
                elem,
                "{name}: `{value}` is {mine}, the oracle says {v}"
            );
        }
        assert_eq!(
            shape.len(),
            dims.len(),
            "{name}: `{value}` is {mine}, the oracle says {v}"
        );
        for (d, o) in shape.iter().zip(dims) {
            if let (Some(o), Some(m)) = (o.as_i64(), d.value()) {
                assert_eq!(m, o, "{name}: `{value}` is {mine}, the oracle says {v}");
            }
        }
    }
    both
}

#[test]
fn agrees_with_onnx_shape_inference_on_the_corpus() {
    let mut report = Vec::new();
    for name in CORPUS {
        let path = corpus_model(name);
        let model = onnxq_ir::load(&path).unwrap();
        let ours = onnxq_infer::infer(&model).unwrap();
        let (ok, json) = run_py("infer_oracle.py", &[path.as_os_str()]);
        assert!(ok, "{name}: {json}");
        let oracle: serde_json::Value = serde_json::from_str(&json).unwrap();
        let values = oracle["values"].as_object().unwrap();
        let both = agree(name, &ours, values);
        if let Some(sym) = oracle["symbolic"].as_object() {
            agree(name, &ours, sym);
        }
        let (known, all) = ours.coverage(&model);
        let count = |vals: Option<&serde_json::Map<String, serde_json::Value>>| {
            let Some(vals) = vals else { return 0 };
            model
                .graph
                .values()
                .filter(|(_, v)| matches!(v.def(), onnxq_ir::Def::Node { .. }))
                .filter(|(_, v)| vals.get(v.name()).is_some_and(|x| x[1].is_array()))
                .count()
        };
        let onnx_known = count(Some(values));
        let sym_known = count(oracle["symbolic"].as_object());
        assert!(
            known >= onnx_known.max(sym_known),
            "{name}: onnxq infers {known} node outputs, ONNX {onnx_known}, ORT's symbolic {sym_known}"
        );
        let mut ops = std::collections::BTreeMap::<&str, usize>::new();
        for u in &ours.unknown {
            *ops.entry(u.op.as_str()).or_default() += 1;
        }
        report.push(format!(
            "{name}: onnxq {known}/{all} node outputs, ONNX ({}) {onnx_known}, ORT symbolic \
             {sym_known}; {both} compared; \
             {} node(s) unknown {ops:?}, {} conflict(s); first: {:?}",
            oracle["mode"],
            ours.unknown.len(),
            ours.conflicts.len(),
            ours.unknown.iter().take(2).collect::<Vec<_>>()
        ));
    }
    eprintln!("{}", report.join("\n"));
}
