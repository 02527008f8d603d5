//! The graph IR through its public API: editing verbs keep the graph valid and refuse bad edits with
//! errors; subgraphs (If, Loop, nested) resolve outer-scope names and round-trip byte-identically;
//! odd-but-legal files round-trip losslessly; typed-field tensors move to external data as raw
//! little-endian bytes; saving is deterministic.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the test failure we want"
)]

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use onnxq_ir::proto as pb;
use onnxq_ir::tensor::raw_bytes;
use onnxq_ir::{Def, Graph, Layout, Model, Node, NodeId, Use, ValueId, from_bytes, load, save};
use onnxq_testkit::{f32_info, f32_tensor, node, tiny_model};
use prost::Message;

// ---- helpers ----

/// Decodes a model from bytes, failing the test with the error.
fn decode(bytes: &[u8]) -> Model {
    from_bytes(bytes.to_vec().into()).unwrap_or_else(|e| panic!("from_bytes: {e}"))
}

/// Encodes a proto and loads it.
fn load_proto(m: &pb::ModelProto) -> Model {
    let model = decode(&m.encode_to_vec());
    model
        .graph
        .validate()
        .unwrap_or_else(|e| panic!("fresh load: {e}"));
    model
}

fn node_id(g: &Graph, name: &str) -> NodeId {
    g.nodes()
        .find(|(_, n)| n.name() == name)
        .map(|(id, _)| id)
        .unwrap_or_else(|| panic!("no node `{name}`"))
}

fn value(g: &Graph, name: &str) -> ValueId {
    g.value_by_name(name)
        .unwrap_or_else(|| panic!("no value `{name}`"))
}

fn check(g: &Graph, after: &str) {
    g.validate()
        .unwrap_or_else(|e| panic!("graph invalid after {after}: {e}"));
}

/// The main graph of a model as written by `to_proto`.
fn saved_graph(m: &Model) -> pb::GraphProto {
    m.to_proto()
        .unwrap()
        .graph
        .unwrap_or_else(|| panic!("to_proto gave no graph"))
}

fn op_order(g: &pb::GraphProto) -> Vec<String> {
    g.node.iter().map(|n| n.op_type().to_owned()).collect()
}

/// Checks that every node of `g` reads only names defined earlier (inputs, initializers, earlier node
/// outputs, or `outer`), i.e. the node list is topologically sorted.
fn assert_sorted(g: &pb::GraphProto, outer: &HashSet<String>) {
    let mut defined: HashSet<String> = outer.clone();
    defined.extend(g.input.iter().map(|i| i.name().to_owned()));
    defined.extend(g.initializer.iter().map(|t| t.name().to_owned()));
    defined.extend(
        g.sparse_initializer
            .iter()
            .filter_map(|s| s.values.as_ref().map(|v| v.name().to_owned())),
    );
    for n in &g.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            assert!(
                defined.contains(i),
                "node `{}` ({}) reads `{i}` before it is defined; order: {:?}",
                n.name(),
                n.op_type(),
                op_order(g)
            );
        }
        // Implicit inputs: names the node's subgraphs read from this scope.
        for a in &n.attribute {
            for body in a.g.iter().chain(a.graphs.iter()) {
                for name in outer_reads(body) {
                    assert!(
                        defined.contains(&name),
                        "node `{}` ({}) has a subgraph reading `{name}` before it is defined; order: {:?}",
                        n.name(),
                        n.op_type(),
                        op_order(g)
                    );
                }
            }
        }
        defined.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
    }
}

/// Names a graph (and its nested subgraphs) reads without defining them.
fn outer_reads(g: &pb::GraphProto) -> Vec<String> {
    let mut own: HashSet<&str> = HashSet::new();
    own.extend(g.input.iter().map(|i| i.name()));
    own.extend(g.initializer.iter().map(|t| t.name()));
    for n in &g.node {
        own.extend(n.output.iter().map(String::as_str));
    }
    let mut reads = Vec::new();
    for n in &g.node {
        reads.extend(
            n.input
                .iter()
                .filter(|i| !i.is_empty() && !own.contains(i.as_str()))
                .cloned(),
        );
        for a in &n.attribute {
            for body in a.g.iter().chain(a.graphs.iter()) {
                reads.extend(
                    outer_reads(body)
                        .into_iter()
                        .filter(|r| !own.contains(r.as_str())),
                );
            }
        }
    }
    reads.extend(
        g.output
            .iter()
            .filter(|o| !own.contains(o.name()))
            .map(|o| o.name().to_owned()),
    );
    reads
}

/// Encodes the model, reloads it, checks the reload validates, is sorted and re-encodes to the same
/// bytes; returns the reload.
fn round_trip(m: &Model) -> Model {
    let bytes = m.to_bytes().unwrap();
    let back = from_bytes(bytes.clone().into())
        .unwrap_or_else(|e| panic!("the edited model does not reload: {e}"));
    check(&back.graph, "reload");
    assert_sorted(&saved_graph(&back), &HashSet::new());
    assert!(
        back.to_bytes().unwrap() == bytes,
        "reloaded model re-encodes differently"
    );
    back
}

/// Loads `m`, checks it validates, and that both `to_bytes` and an inline `save` give back exactly
/// the input bytes.
fn assert_lossless(label: &str, m: &pb::ModelProto) -> Model {
    let bytes = m.encode_to_vec();
    let model = from_bytes(bytes.clone().into()).unwrap_or_else(|e| panic!("{label}: {e}"));
    model
        .graph
        .validate()
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let again = model.to_bytes().unwrap();
    assert!(
        again == bytes,
        "{label}: to_bytes differs from the input ({} vs {} bytes)",
        again.len(),
        bytes.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    save(&model, &path, &Layout::Inline).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(
        std::fs::read(&path).unwrap() == bytes,
        "{label}: inline save differs from the input"
    );
    model
}

/// Runs `f`, turning a panic into a test failure that says which verb panicked.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| panic!("{what} panicked instead of returning an error"))
}

fn entry(k: &str, v: &str) -> pb::StringStringEntryProto {
    pb::StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    }
}

fn opset(domain: &str, version: i64) -> pb::OperatorSetIdProto {
    pb::OperatorSetIdProto {
        domain: Some(domain.into()),
        version: Some(version),
    }
}

/// A tensor value declaration of element type `elem` with a fixed shape.
fn info(name: &str, elem: i32, dims: &[i64]) -> pb::ValueInfoProto {
    let mut i = f32_info(name, dims);
    if let Some(pb::type_proto::Value::TensorType(t)) =
        i.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = Some(elem);
    }
    i
}

fn graph_attr(name: &str, g: pb::GraphProto) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        r#type: Some(pb::attribute_proto::AttributeType::Graph as i32),
        g: Some(g),
        ..Default::default()
    }
}

fn scalar_f32(v: f32) -> pb::TensorProto {
    pb::TensorProto {
        data_type: Some(1),
        raw_data: Some(v.to_le_bytes().to_vec().into()),
        ..Default::default()
    }
}

fn model_with(graph: pb::GraphProto, opsets: Vec<pb::OperatorSetIdProto>) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: Some(8),
        producer_name: Some("edit-test".into()),
        opset_import: opsets,
        graph: Some(graph),
        ..Default::default()
    }
}

fn tiny() -> Model {
    load_proto(&tiny_model())
}

/// A value id that does not exist in `tiny()`'s graph (taken from a larger graph).
fn foreign_value() -> ValueId {
    let mut big = tiny();
    for i in 0..20 {
        big.graph
            .add_initializer(&format!("extra{i}"), scalar_f32(0.0))
            .unwrap();
    }
    big.graph
        .values()
        .last()
        .map(|(id, _)| id)
        .unwrap_or_else(|| unreachable!())
}

// ---- 1. editing verbs keep the graph valid ----

#[test]
fn qdq_pair_inserted_before_matmul_input_is_sorted_first() {
    let mut m = tiny();
    let g = &mut m.graph;
    let x = value(g, "x");
    let mm = node_id(g, "mm");

    let scale = g.add_initializer("x_scale", scalar_f32(0.05)).unwrap();
    check(g, "add_initializer x_scale");
    let zp = g
        .add_initializer(
            "x_zero_point",
            pb::TensorProto {
                data_type: Some(2),
                raw_data: Some(vec![128u8].into()),
                ..Default::default()
            },
        )
        .unwrap();
    check(g, "add_initializer x_zero_point");
    assert!(matches!(g.value(scale).def(), Def::Initializer(_)));
    assert_eq!(&g.initializers()[2..], &[scale, zp]);

    let q_name = g.fresh_name("x_quantized");
    let (q, q_out) = g
        .add_node(
            Node::new("QuantizeLinear", "", Some("x_q".into())),
            &[Some(x), Some(scale), Some(zp)],
            &[Some(&q_name)],
        )
        .unwrap();
    check(g, "add_node QuantizeLinear");
    let xq = q_out[0].unwrap();
    let (dq, dq_out) = g
        .add_node(
            Node::new("DequantizeLinear", "", Some("x_dq".into())),
            &[Some(xq), Some(scale), Some(zp)],
            &[Some("x_dequantized")],
        )
        .unwrap();
    check(g, "add_node DequantizeLinear");
    let xdq = dq_out[0].unwrap();
    assert!(matches!(g.value(xdq).def(), Def::Node { node, slot: 0 } if *node == dq));
    assert!(q.index() > mm.index() && dq.index() > mm.index());

    // Every reader of x but the QuantizeLinear now reads the dequantized value.
    g.replace_uses(
        x,
        xdq,
        |u| matches!(u, Use::Node { node, .. } if *node == q),
    )
    .unwrap();
    check(g, "replace_uses x -> x_dequantized");
    assert_eq!(g.node(mm).unwrap().inputs()[0], Some(xdq));
    assert_eq!(g.value(x).uses(), &[Use::Node { node: q, slot: 0 }]);
    assert_eq!(g.value(xdq).uses(), &[Use::Node { node: mm, slot: 0 }]);
    assert_eq!(g.producer(xdq), Some(dq));

    let order = g.topological_order().unwrap();
    assert_eq!(&order[..2], &[q, dq], "the added nodes feed the first node");

    let gp = saved_graph(&m);
    assert_eq!(
        op_order(&gp),
        [
            "QuantizeLinear",
            "DequantizeLinear",
            "MatMul",
            "Add",
            "Relu"
        ]
    );
    assert_eq!(gp.node[0].input, ["x", "x_scale", "x_zero_point"]);
    assert_eq!(gp.node[1].input, ["x_quantized", "x_scale", "x_zero_point"]);
    assert_eq!(gp.node[2].input, ["x_dequantized", "w"]);
    let inits: Vec<&str> = gp.initializer.iter().map(|t| t.name()).collect();
    assert_eq!(inits, ["w", "b", "x_scale", "x_zero_point"]);

    let back = round_trip(&m);
    let mm2 = node_id(&back.graph, "mm");
    let xdq2 = back.graph.node(mm2).unwrap().inputs()[0].unwrap();
    assert_eq!(back.graph.value(xdq2).name(), "x_dequantized");
}

#[test]
fn weight_dequantize_via_set_input_then_old_initializer_removed_and_name_reused() {
    let mut m = tiny();
    let g = &mut m.graph;
    let mm = node_id(g, "mm");
    let w = value(g, "w");

    let wq_name = g.fresh_name("w");
    assert_eq!(wq_name, "w_1");
    let wq = g
        .add_initializer(
            &wq_name,
            pb::TensorProto {
                dims: vec![4, 3],
                data_type: Some(3), // int8
                raw_data: Some((0..12u8).collect::<Vec<u8>>().into()),
                ..Default::default()
            },
        )
        .unwrap();
    check(g, "add_initializer w_1");
    let scale = g.add_initializer("w_scale", scalar_f32(0.125)).unwrap();
    check(g, "add_initializer w_scale");
    let (dq, outs) = g
        .add_node(
            Node::new("DequantizeLinear", "", Some("w_dq".into())),
            &[Some(wq), Some(scale), None],
            &[Some("w_dequantized")],
        )
        .unwrap();
    check(g, "add_node DequantizeLinear");
    let wdq = outs[0].unwrap();

    g.set_input(mm, 1, Some(wdq)).unwrap();
    check(g, "set_input");
    assert!(g.value(w).uses().is_empty());
    assert_eq!(g.value(wdq).uses(), &[Use::Node { node: mm, slot: 1 }]);

    let t = g.remove_initializer(w).unwrap();
    check(g, "remove_initializer w");
    assert_eq!(t.dims, [4, 3]);
    assert_eq!(g.value_by_name("w"), None, "the removed name is free");
    assert!(!g.initializers().contains(&w));
    assert_eq!(g.fresh_name("w"), "w");
    g.rename(wdq, "w").unwrap();
    check(g, "rename w_dequantized -> w");
    assert_eq!(g.value_by_name("w"), Some(wdq));

    let gp = saved_graph(&m);
    assert_eq!(op_order(&gp), ["DequantizeLinear", "MatMul", "Add", "Relu"]);
    assert_eq!(gp.node[0].input, ["w_1", "w_scale", ""]);
    assert_eq!(gp.node[0].output, ["w"]);
    assert_eq!(gp.node[1].input, ["x", "w"]);
    let inits: Vec<&str> = gp.initializer.iter().map(|t| t.name()).collect();
    assert_eq!(inits, ["b", "w_1", "w_scale"]);

    let back = round_trip(&m);
    let w2 = value(&back.graph, "w");
    assert!(matches!(back.graph.value(w2).def(), Def::Node { .. }));
    let dq2 = back.graph.producer(w2).unwrap();
    assert_eq!(back.graph.node(dq2).unwrap().inputs()[2], None);
    assert_eq!(back.graph.node(dq2).unwrap().name(), "w_dq");
    assert_eq!(m.graph.producer(value(&m.graph, "w")), Some(dq));
}

#[test]
fn fresh_names_are_unique() {
    let mut m = tiny();
    let g = &mut m.graph;
    assert_eq!(g.fresh_name("scale"), "scale");
    assert_eq!(g.fresh_name("x"), "x_1");
    g.add_initializer("x_1", scalar_f32(1.0)).unwrap();
    assert_eq!(g.fresh_name("x"), "x_2");
    // "x_2" taken by someone else too: the next one skips it.
    g.add_initializer("x_2", scalar_f32(1.0)).unwrap();
    assert_eq!(g.fresh_name("x"), "x_3");

    let mut seen = HashSet::new();
    for _ in 0..10 {
        let n = g.fresh_name("w");
        assert!(g.value_by_name(&n).is_none(), "`{n}` is taken");
        g.add_initializer(&n, scalar_f32(0.0)).unwrap();
        assert!(seen.insert(n.clone()), "`{n}` given twice");
    }
    check(g, "adding fresh initializers");
    // Node outputs get fresh names too.
    let z = value(g, "z");
    for _ in 0..3 {
        let n = g.fresh_name("z");
        g.add_node(Node::new("Relu", "", None), &[Some(z)], &[Some(&n)])
            .unwrap();
        assert!(seen.insert(n));
    }
    check(g, "adding nodes with fresh output names");
    round_trip(&m);
}

#[test]
fn rename_updates_every_reference_including_graph_outputs() {
    let mut p = tiny_model();
    let gp = p.graph.as_mut().unwrap();
    gp.value_info.push(f32_info("z", &[1, 3]));
    gp.value_info.push(f32_info("xw", &[1, 3]));
    let mut m = load_proto(&p);
    let g = &mut m.graph;
    let y = value(g, "y");
    let z = value(g, "z");
    let w = value(g, "w");

    g.rename(y, "logits").unwrap();
    check(g, "rename y -> logits");
    g.rename(z, "pre_act").unwrap();
    check(g, "rename z -> pre_act");
    g.rename(w, "weight").unwrap();
    check(g, "rename w -> weight");
    g.rename(y, "logits").unwrap(); // to its own name: a no-op
    check(g, "rename logits -> logits");

    assert_eq!(g.value_by_name("y"), None);
    assert_eq!(g.value_by_name("z"), None);
    assert_eq!(g.value_by_name("logits"), Some(y));
    assert_eq!(g.outputs()[0].value, y);
    assert_eq!(g.value(y).name(), "logits");
    assert_eq!(g.fresh_name("y"), "y", "the old name is free again");

    let gp = saved_graph(&m);
    assert_eq!(gp.output[0].name(), "logits");
    assert_eq!(
        gp.output[0].r#type,
        f32_info("y", &[1, 3]).r#type,
        "output type kept"
    );
    assert_eq!(gp.node[0].input, ["x", "weight"]);
    assert_eq!(gp.node[1].output, ["pre_act"]);
    assert_eq!(gp.node[2].input, ["pre_act"]);
    assert_eq!(gp.node[2].output, ["logits"]);
    assert_eq!(gp.initializer[0].name(), "weight");
    let vi: Vec<&str> = gp.value_info.iter().map(|v| v.name()).collect();
    assert_eq!(vi, ["pre_act", "xw"]);
    // No trace of the old names anywhere.
    let mut names: Vec<&str> = Vec::new();
    for n in &gp.node {
        names.extend(n.input.iter().map(String::as_str));
        names.extend(n.output.iter().map(String::as_str));
    }
    names.extend(gp.input.iter().map(|v| v.name()));
    names.extend(gp.output.iter().map(|v| v.name()));
    names.extend(gp.value_info.iter().map(|v| v.name()));
    names.extend(gp.initializer.iter().map(|t| t.name()));
    for old in ["y", "z", "w"] {
        assert!(!names.contains(&old), "`{old}` is still written: {names:?}");
    }

    let back = round_trip(&m);
    let l = value(&back.graph, "logits");
    assert_eq!(back.graph.value(l).uses(), &[Use::Output(0)]);
    assert_eq!(
        back.graph
            .node(back.graph.producer(l).unwrap())
            .unwrap()
            .op_type(),
        "Relu"
    );
}

#[test]
fn remove_node_refused_while_used_then_fine_after_rewiring() {
    let mut p = tiny_model();
    p.graph
        .as_mut()
        .unwrap()
        .value_info
        .push(f32_info("y", &[1, 3]));
    let mut m = load_proto(&p);
    let g = &mut m.graph;
    let mm = node_id(g, "mm");
    let relu = node_id(g, "relu");
    let (y, z) = (value(g, "y"), value(g, "z"));
    let values_before = g.values().count();

    let e = g.remove_node(mm).unwrap_err();
    assert!(e.to_string().contains("xw"), "{e}");
    check(g, "refused remove_node mm");
    let e = g.remove_node(relu).unwrap_err(); // y is a graph output
    assert!(e.to_string().contains('y'), "{e}");
    check(g, "refused remove_node relu");
    assert_eq!(g.nodes().count(), 3);
    assert_eq!(g.values().count(), values_before);

    // Rewire the graph output onto z, then Relu is dead.
    g.replace_uses(y, z, |_| false).unwrap();
    check(g, "replace_uses y -> z");
    assert_eq!(g.outputs()[0].value, z);
    assert!(g.value(z).uses().contains(&Use::Output(0)));
    assert!(g.value(y).uses().is_empty());

    let removed = g.remove_node(relu).unwrap();
    check(g, "remove_node relu");
    assert_eq!(removed.op_type(), "Relu");
    assert!(g.node(relu).is_none());
    assert_eq!(g.value(z).uses(), &[Use::Output(0)]);
    assert_eq!(
        g.value_by_name("y"),
        None,
        "the removed output's name is free"
    );
    assert_eq!(g.fresh_name("y"), "y");
    assert!(g.remove_node(relu).is_err(), "removing twice");
    check(g, "second remove_node relu");

    g.rename(z, "y").unwrap();
    check(g, "rename z -> y");

    let gp = saved_graph(&m);
    assert_eq!(op_order(&gp), ["MatMul", "Add"]);
    assert_eq!(gp.node[1].output, ["y"]);
    assert_eq!(gp.output[0].name(), "y");
    assert!(
        gp.value_info.is_empty(),
        "value_info of the removed output must go: {:?}",
        gp.value_info
    );

    // A removed name can be defined again by a new node.
    let g = &mut m.graph;
    let z2 = value(g, "y");
    g.rename(z2, "z").unwrap();
    let (_, outs) = g
        .add_node(
            Node::new("Relu", "", Some("relu2".into())),
            &[Some(z2)],
            &[Some("y")],
        )
        .unwrap();
    check(g, "re-adding a Relu producing `y`");
    g.replace_uses(z2, outs[0].unwrap(), |u| matches!(u, Use::Node { .. }))
        .unwrap();
    check(g, "moving the graph output to the new Relu");
    let back = round_trip(&m);
    assert_eq!(op_order(&saved_graph(&back)), ["MatMul", "Add", "Relu"]);
    assert_eq!(saved_graph(&back).output[0].name(), "y");
}

#[test]
fn remove_initializer_refused_while_used() {
    let mut m = tiny();
    let g = &mut m.graph;
    let (b, x, y) = (value(g, "b"), value(g, "x"), value(g, "y"));
    assert!(g.remove_initializer(b).is_err());
    check(g, "refused remove_initializer b");
    assert!(g.remove_initializer(x).is_err(), "x is a graph input");
    assert!(g.remove_initializer(y).is_err(), "y is no initializer");
    check(g, "refused remove_initializer x/y");
    assert_eq!(g.value_by_name("b"), Some(b));

    let spare = g.add_initializer("spare", scalar_f32(3.0)).unwrap();
    let t = g.remove_initializer(spare).unwrap();
    check(g, "remove_initializer spare");
    assert_eq!(t.raw_data.as_deref(), Some(&3.0f32.to_le_bytes()[..]));
    assert_eq!(g.value_by_name("spare"), None);
    let spare2 = g.add_initializer("spare", t).unwrap();
    check(g, "re-adding spare");
    assert_ne!(spare, spare2, "ids are not reused");

    // Drop the Add: Relu reads xw directly; then b is unused.
    let (xw, z) = (value(g, "xw"), value(g, "z"));
    let add = node_id(g, "add");
    g.replace_uses(z, xw, |_| false).unwrap();
    check(g, "replace_uses z -> xw");
    g.remove_node(add).unwrap();
    check(g, "remove_node add");
    g.remove_initializer(b).unwrap();
    check(g, "remove_initializer b");
    assert_eq!(g.value_by_name("b"), None);

    let gp = saved_graph(&m);
    assert_eq!(op_order(&gp), ["MatMul", "Relu"]);
    assert_eq!(gp.node[1].input, ["xw"]);
    let inits: Vec<&str> = gp.initializer.iter().map(|t| t.name()).collect();
    assert_eq!(inits, ["w", "spare"]);
    round_trip(&m);
}

#[test]
fn remove_initializer_listed_as_graph_input_is_refused() {
    // IR 3 style: the initializer is also a graph input (an overridable default).
    let mut p = tiny_model();
    p.ir_version = Some(3);
    p.opset_import = vec![opset("", 8)];
    let gp = p.graph.as_mut().unwrap();
    gp.initializer.push(f32_tensor("unused", &[1], &[1.0]));
    gp.input.push(f32_info("unused", &[1]));
    let mut m = load_proto(&p);
    let unused = value(&m.graph, "unused");
    assert!(m.graph.value(unused).uses().is_empty());
    assert!(m.graph.remove_initializer(unused).is_err());
    check(&m.graph, "refused remove_initializer");
}

#[test]
fn remove_initializer_drops_its_value_info() {
    let mut p = tiny_model();
    let gp = p.graph.as_mut().unwrap();
    gp.initializer.push(f32_tensor("spare", &[2], &[1.0, 2.0]));
    gp.value_info.push(f32_info("spare", &[2]));
    let mut m = load_proto(&p);
    let spare = value(&m.graph, "spare");
    m.graph.remove_initializer(spare).unwrap();
    check(&m.graph, "remove_initializer spare");
    let gp = saved_graph(&m);
    let vi: Vec<&str> = gp.value_info.iter().map(|v| v.name()).collect();
    assert!(
        vi.is_empty(),
        "value_info of a removed initializer must go (as remove_node does for outputs), got {vi:?}"
    );
}

#[test]
fn replace_uses_can_retarget_a_graph_output_only() {
    let mut m = tiny();
    let g = &mut m.graph;
    let (y, z) = (value(g, "y"), value(g, "z"));
    let relu = node_id(g, "relu");
    let (sig, outs) = g
        .add_node(
            Node::new("Sigmoid", "", Some("sig".into())),
            &[Some(z)],
            &[Some("s")],
        )
        .unwrap();
    check(g, "add_node Sigmoid");
    let s = outs[0].unwrap();
    // Only the graph output moves; nothing else reads y anyway.
    g.replace_uses(y, s, |u| !matches!(u, Use::Output(_)))
        .unwrap();
    check(g, "replace_uses y -> s for outputs");
    assert_eq!(g.outputs()[0].value, s);
    assert_eq!(g.value(s).uses(), &[Use::Output(0)]);
    assert!(g.value(y).uses().is_empty());
    let mut zu = g.value(z).uses().to_vec();
    zu.sort();
    assert_eq!(
        zu,
        [
            Use::Node {
                node: relu,
                slot: 0
            },
            Use::Node { node: sig, slot: 0 }
        ]
    );
    g.remove_node(relu).unwrap();
    check(g, "remove_node relu");

    let gp = saved_graph(&m);
    assert_eq!(op_order(&gp), ["MatMul", "Add", "Sigmoid"]);
    assert_eq!(gp.output[0].name(), "s");
    assert_eq!(gp.output[0].r#type, f32_info("y", &[1, 3]).r#type);
    round_trip(&m);
}

#[test]
fn node_added_at_the_end_feeding_the_first_node_is_saved_first() {
    // A chain built backwards: each new node feeds the previously first one.
    let mut m = tiny();
    let g = &mut m.graph;
    let x = value(g, "x");
    let mut head = node_id(g, "mm");
    let mut added = Vec::new();
    for i in 0..3 {
        let name = g.fresh_name("x_pre");
        let (n, outs) = g
            .add_node(
                Node::new("Identity", "", Some(format!("pre{i}"))),
                &[Some(x)],
                &[Some(&name)],
            )
            .unwrap();
        g.set_input(head, 0, outs[0]).unwrap();
        check(g, "prepending an Identity");
        head = n;
        added.push(n);
    }
    let order = g.topological_order().unwrap();
    added.reverse();
    assert_eq!(&order[..3], &added[..]);
    let gp = saved_graph(&m);
    assert_eq!(
        op_order(&gp),
        ["Identity", "Identity", "Identity", "MatMul", "Add", "Relu"]
    );
    assert_sorted(&gp, &HashSet::new());
    round_trip(&m);
}

// ---- 2. errors from editing verbs are errors, never panics ----

#[test]
fn add_node_with_an_output_name_in_use_is_an_error() {
    let mut m = tiny();
    let g = &mut m.graph;
    let x = value(g, "x");
    let (nodes, values) = (g.nodes().count(), g.values().count());
    for taken in ["z", "x", "w", "y"] {
        let r = no_panic("add_node", || {
            g.add_node(Node::new("Relu", "", None), &[Some(x)], &[Some(taken)])
        });
        let e = r.expect_err("duplicate output name accepted");
        assert!(e.to_string().contains(taken), "{e}");
        check(g, "refused add_node");
    }
    // A clash in a later output must not leave the earlier outputs behind.
    let r = no_panic("add_node", || {
        g.add_node(
            Node::new("Split", "", None),
            &[Some(x)],
            &[Some("fresh_a"), Some("z")],
        )
    });
    assert!(r.is_err());
    check(g, "refused add_node with a later clash");
    assert_eq!(g.value_by_name("fresh_a"), None);
    assert_eq!((g.nodes().count(), g.values().count()), (nodes, values));
    round_trip(&m);
}

#[test]
fn add_node_with_the_same_output_name_twice_is_an_error_and_changes_nothing() {
    let mut m = tiny();
    let g = &mut m.graph;
    let x = value(g, "x");
    let (nodes, values) = (g.nodes().count(), g.values().count());
    let r = no_panic("add_node", || {
        g.add_node(
            Node::new("Split", "", Some("split".into())),
            &[Some(x)],
            &[Some("half"), Some("half")],
        )
    });
    assert!(r.is_err(), "two outputs named `half` accepted");
    g.validate()
        .unwrap_or_else(|e| panic!("a refused add_node left the graph broken: {e}"));
    assert_eq!(
        g.value_by_name("half"),
        None,
        "a refused add_node left a value behind"
    );
    assert_eq!((g.nodes().count(), g.values().count()), (nodes, values));
}

#[test]
fn rename_to_an_existing_name_is_an_error() {
    let mut m = tiny();
    let g = &mut m.graph;
    let (x, z, w) = (value(g, "x"), value(g, "z"), value(g, "w"));
    for (v, to) in [(x, "z"), (z, "y"), (w, "b"), (z, "x")] {
        let e = no_panic("rename", || g.rename(v, to)).expect_err("rename onto a taken name");
        assert!(e.to_string().contains(to), "{e}");
        check(g, "refused rename");
    }
    assert_eq!(g.value(x).name(), "x");
    assert_eq!(g.value(z).name(), "z");
    assert_eq!(g.value_by_name("z"), Some(z));
    assert_eq!(m.to_bytes().unwrap(), tiny_model().encode_to_vec());
}

#[test]
fn other_refused_edits_are_errors() {
    let mut m = tiny();
    let g = &mut m.graph;
    let (mm, relu) = (node_id(g, "mm"), node_id(g, "relu"));
    let x = value(g, "x");
    let foreign = foreign_value();
    assert!(no_panic("set_input", || g.set_input(mm, 7, Some(x))).is_err());
    assert!(
        no_panic("add_node", || g.add_node(
            Node::new("Relu", "", None),
            &[Some(foreign)],
            &["r"].map(Some)
        ))
        .is_err()
    );
    check(g, "refused edits");
    // Remove the Relu, then edits of the removed node fail.
    let (y, z) = (value(g, "y"), value(g, "z"));
    g.replace_uses(y, z, |_| false).unwrap();
    g.remove_node(relu).unwrap();
    assert!(no_panic("set_input", || g.set_input(relu, 0, Some(x))).is_err());
    assert!(no_panic("remove_node", || g.remove_node(relu)).is_err());
    assert!(g.node_mut(relu).is_none());
    check(g, "refused edits of a removed node");
    round_trip(&m);
}

#[test]
fn verbs_given_a_foreign_value_id_return_errors() {
    // `add_node` checks its input ids; the other verbs taking a ValueId must too.
    let foreign = foreign_value();
    let base = tiny();
    let mm = node_id(&base.graph, "mm");
    let mut failures = Vec::new();
    {
        let mut g = base.graph.clone();
        match catch_unwind(AssertUnwindSafe(|| g.set_input(mm, 0, Some(foreign)))) {
            Ok(r) if r.is_err() => {}
            Ok(_) => failures.push("set_input accepted a foreign value id"),
            Err(_) => failures.push("set_input panicked on a foreign value id"),
        }
    }
    {
        let mut g = base.graph.clone();
        match catch_unwind(AssertUnwindSafe(|| g.rename(foreign, "q"))) {
            Ok(r) if r.is_err() => {}
            Ok(_) => failures.push("rename accepted a foreign value id"),
            Err(_) => failures.push("rename panicked on a foreign value id"),
        }
    }
    {
        let mut g = base.graph.clone();
        match catch_unwind(AssertUnwindSafe(|| g.remove_initializer(foreign))) {
            Ok(r) if r.is_err() => {}
            Ok(_) => failures.push("remove_initializer accepted a foreign value id"),
            Err(_) => failures.push("remove_initializer panicked on a foreign value id"),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn verbs_refuse_to_read_a_removed_value() {
    // Relu is removed, so `y` is a tombstone: reading it again would leave an unnamed value in use.
    let mut base = tiny();
    let g = &mut base.graph;
    let (y, z) = (value(g, "y"), value(g, "z"));
    g.replace_uses(y, z, |_| false).unwrap();
    g.remove_node(node_id(g, "relu")).unwrap();
    check(g, "remove_node relu");
    let add = node_id(g, "add");
    let mut failures = Vec::new();
    {
        let mut g = base.graph.clone();
        let r = no_panic("add_node", || {
            g.add_node(Node::new("Relu", "", None), &[Some(y)], &[Some("r")])
        });
        if r.is_ok() {
            failures.push(format!(
                "add_node reading a removed value accepted; validate says {:?}",
                g.validate().err().map(|e| e.to_string())
            ));
        }
    }
    {
        let mut g = base.graph.clone();
        let r = no_panic("set_input", || g.set_input(add, 0, Some(y)));
        if r.is_ok() {
            failures.push(format!(
                "set_input to a removed value accepted; validate says {:?}",
                g.validate().err().map(|e| e.to_string())
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn empty_value_names_are_refused() {
    let base = tiny();
    let z = value(&base.graph, "z");
    let mut failures = Vec::new();
    {
        let mut g = base.graph.clone();
        let r = no_panic("rename", || g.rename(z, ""));
        if r.is_ok() {
            failures.push(format!(
                "rename to \"\" accepted; validate now says {:?}",
                g.validate().err().map(|e| e.to_string())
            ));
        }
    }
    {
        let mut m = base.clone();
        let r = no_panic("add_initializer", || {
            m.graph.add_initializer("", scalar_f32(1.0))
        });
        if r.is_ok() {
            failures.push(format!(
                "add_initializer(\"\") accepted; the saved model reloads as {:?}",
                from_bytes(m.to_bytes().unwrap().into())
                    .err()
                    .map(|e| e.to_string())
            ));
        }
    }
    {
        let mut g = base.graph.clone();
        let r = no_panic("add_node", || {
            g.add_node(Node::new("Relu", "", None), &[Some(z)], &[Some("")])
        });
        // An empty name may only mean "omitted", never a value called "".
        if let Ok((_, outs)) = r
            && outs[0].is_some()
        {
            failures.push("add_node made a value named \"\"".to_owned());
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---- 3. subgraphs ----

/// `y = If(cond, then: t + bias, else: t - bias)` with `t = Neg(x)`; the branches read `t` (a node
/// output) and `bias` (an initializer) of the main graph. With `if_first` the If node is listed
/// before the Neg that produces `t` (legal to load, but must be sorted on save).
fn if_model(then_reads: &str, if_first: bool) -> pb::ModelProto {
    let branch = |name: &str, op: &str, out: &str, a: &str| pb::GraphProto {
        name: Some(name.into()),
        node: vec![node(op, &format!("{name}_op"), &[a, "bias"], &[out])],
        output: vec![f32_info(out, &[1, 3])],
        ..Default::default()
    };
    let mut if_node = node("If", "if", &["cond"], &["y"]);
    if_node.attribute = vec![
        graph_attr("then_branch", branch("then", "Add", "then_y", then_reads)),
        graph_attr("else_branch", branch("else", "Sub", "else_y", "t")),
    ];
    let neg = node("Neg", "neg", &["x"], &["t"]);
    let nodes = if if_first {
        vec![if_node, neg]
    } else {
        vec![neg, if_node]
    };
    model_with(
        pb::GraphProto {
            name: Some("if-model".into()),
            node: nodes,
            initializer: vec![f32_tensor("bias", &[3], &[1.0, 2.0, 3.0])],
            input: vec![info("cond", 9, &[]), f32_info("x", &[1, 3])],
            output: vec![f32_info("y", &[1, 3])],
            ..Default::default()
        },
        vec![opset("", 17)],
    )
}

#[test]
fn if_branches_read_outer_values_and_round_trip_byte_identical() {
    let p = if_model("t", false);
    let m = assert_lossless("if model", &p);
    let g = &m.graph;
    let if_id = node_id(g, "if");
    let ifn = g.node(if_id).unwrap();
    assert_eq!(ifn.attributes.len(), 2);
    for (attr, node_name) in [("then_branch", "then_op"), ("else_branch", "else_op")] {
        let a = ifn.attribute(attr).unwrap();
        assert_eq!(a.subgraphs.len(), 1, "{attr}");
        assert!(a.proto.g.is_none(), "{attr}: body lifted out of the proto");
        let sub = &a.subgraphs[0];
        for outer in ["t", "bias"] {
            let v = value(sub, outer);
            assert!(
                matches!(sub.value(v).def(), Def::Outer),
                "{attr}: `{outer}` is {:?}",
                sub.value(v).def()
            );
            assert_eq!(sub.value(v).uses().len(), 1);
        }
        let op = node_id(sub, node_name);
        let out = sub.node(op).unwrap().outputs()[0].unwrap();
        assert_eq!(sub.value(out).uses(), &[Use::Output(0)]);
        assert!(sub.value_by_name("x").is_none(), "x is not read by {attr}");
    }
    // In the main graph `t` is a node output and `bias` an initializer, not outer values.
    assert!(matches!(g.value(value(g, "t")).def(), Def::Node { .. }));
    assert!(matches!(
        g.value(value(g, "bias")).def(),
        Def::Initializer(_)
    ));
}

#[test]
fn subgraph_reading_an_undefined_name_is_rejected_naming_it() {
    let bytes = if_model("ghost_value", false).encode_to_vec();
    let e = from_bytes(bytes.into()).expect_err("undefined outer name accepted");
    let msg = e.to_string();
    assert!(msg.contains("ghost_value"), "{msg}");
    assert!(msg.contains("then_branch"), "{msg}");

    // A subgraph output naming nothing.
    let mut p = if_model("t", false);
    let g = p.graph.as_mut().unwrap();
    let body = g.node[1].attribute[1].g.as_mut().unwrap();
    body.output[0].name = Some("phantom_out".into());
    let e = from_bytes(p.encode_to_vec().into()).expect_err("undefined subgraph output accepted");
    assert!(e.to_string().contains("phantom_out"), "{e}");
}

/// A Loop whose body reads the main graph's initializer `step`, and holds an If whose branches read
/// `x` (two scopes up) and the body's `acc` (one scope up).
fn loop_model() -> pb::ModelProto {
    let then_g = pb::GraphProto {
        name: Some("inner_then".into()),
        node: vec![node("Add", "inner_add", &["x", "acc"], &["ty"])],
        output: vec![f32_info("ty", &[1, 3])],
        ..Default::default()
    };
    let else_g = pb::GraphProto {
        name: Some("inner_else".into()),
        node: vec![node("Identity", "inner_id", &["x"], &["ey"])],
        output: vec![f32_info("ey", &[1, 3])],
        ..Default::default()
    };
    let mut inner_if = node("If", "inner_if", &["c_in"], &["sel"]);
    inner_if.attribute = vec![
        graph_attr("then_branch", then_g),
        graph_attr("else_branch", else_g),
    ];
    let body = pb::GraphProto {
        name: Some("body".into()),
        node: vec![
            node("Add", "acc_add", &["acc", "step"], &["acc_next"]),
            node("Identity", "cond_id", &["c_in"], &["c_out"]),
            inner_if,
        ],
        input: vec![
            info("i", 7, &[]),
            info("c_in", 9, &[]),
            f32_info("acc", &[1, 3]),
        ],
        output: vec![
            info("c_out", 9, &[]),
            f32_info("acc_next", &[1, 3]),
            f32_info("sel", &[1, 3]),
        ],
        ..Default::default()
    };
    let mut lp = node("Loop", "loop", &["trip", "cond", "x"], &["acc_out", "scan"]);
    lp.attribute = vec![graph_attr("body", body)];
    model_with(
        pb::GraphProto {
            name: Some("loop-model".into()),
            node: vec![lp],
            initializer: vec![f32_tensor("step", &[3], &[0.5, 0.25, 0.125])],
            input: vec![
                info("trip", 7, &[]),
                info("cond", 9, &[]),
                f32_info("x", &[1, 3]),
            ],
            output: vec![f32_info("acc_out", &[1, 3])],
            ..Default::default()
        },
        vec![opset("", 17)],
    )
}

#[test]
fn loop_body_and_nested_if_resolve_outer_scopes() {
    let m = assert_lossless("loop model", &loop_model());
    let g = &m.graph;
    let lp = g.node(node_id(g, "loop")).unwrap();
    let body = &lp.attribute("body").unwrap().subgraphs[0];
    assert!(matches!(body.value(value(body, "step")).def(), Def::Outer));
    assert!(matches!(body.value(value(body, "acc")).def(), Def::Input));
    assert!(matches!(body.value(value(body, "c_in")).def(), Def::Input));
    // x is read only by the nested If: the body holds it as an outer value used by that If.
    let inner_id = node_id(body, "inner_if");
    let x = value(body, "x");
    assert!(matches!(body.value(x).def(), Def::Outer));
    assert_eq!(body.value(x).uses(), &[Use::Subgraph { node: inner_id }]);
    let inner = body.node(inner_id).unwrap();
    let then_g = &inner.attribute("then_branch").unwrap().subgraphs[0];
    let else_g = &inner.attribute("else_branch").unwrap().subgraphs[0];
    for (sub, names) in [(then_g, &["x", "acc"][..]), (else_g, &["x"][..])] {
        for n in names {
            assert!(
                matches!(sub.value(value(sub, n)).def(), Def::Outer),
                "`{n}` should be outer"
            );
        }
    }
    // Unused Loop output `scan` is still a node output of the main graph.
    assert!(matches!(
        g.value(value(g, "scan")).def(),
        Def::Node { slot: 1, .. }
    ));
}

#[test]
fn if_listed_before_the_producer_its_branches_read_is_saved_after_it() {
    // The branches read `t` implicitly; the producer Neg must come first in a saved file (ONNX
    // requires topological order including subgraphs' implicit inputs).
    let p = if_model("t", true);
    let m = load_proto(&p);
    let gp = saved_graph(&m);
    assert_sorted(&gp, &HashSet::new());
    assert_eq!(op_order(&gp), ["Neg", "If"]);
    assert_eq!(m.to_bytes().unwrap(), if_model("t", false).encode_to_vec());
}

#[test]
fn renaming_a_value_read_by_a_subgraph_keeps_the_model_loadable() {
    let mut m = load_proto(&if_model("t", false));
    let t = value(&m.graph, "t");
    match m.graph.rename(t, "t_renamed") {
        Err(_) => {} // refusing is acceptable
        Ok(()) => {
            check(&m.graph, "rename t");
            let bytes = m.to_bytes().unwrap();
            let back = from_bytes(bytes.into()).unwrap_or_else(|e| {
                panic!("after renaming a value read by a subgraph the model no longer loads: {e}")
            });
            let gp = saved_graph(&back);
            let then_g = gp.node[1].attribute[0].g.as_ref().unwrap();
            assert_eq!(then_g.node[0].input[0], "t_renamed");
        }
    }
}

#[test]
fn removing_what_only_a_subgraph_reads_is_refused() {
    // `bias` is read only by the If branches; `t` too once the branches are the only readers.
    let base = load_proto(&if_model("t", false));
    let mut failures = Vec::new();
    {
        let mut m = base.clone();
        let bias = value(&m.graph, "bias");
        if m.graph.remove_initializer(bias).is_ok() {
            failures.push(format!(
                "remove_initializer(bias) succeeded although the If branches read it; the saved model \
                 reloads as {:?}",
                from_bytes(m.to_bytes().unwrap().into())
                    .err()
                    .map(|e| e.to_string())
            ));
        }
    }
    {
        let mut m = base.clone();
        let neg = node_id(&m.graph, "neg");
        if m.graph.remove_node(neg).is_ok() {
            failures.push(format!(
                "remove_node(neg) succeeded although the If branches read its output `t`; the saved \
                 model reloads as {:?}",
                from_bytes(m.to_bytes().unwrap().into())
                    .err()
                    .map(|e| e.to_string())
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---- 4. losslessness on odd-but-legal input ----

#[test]
fn lossless_unknown_custom_op_with_unknown_attributes() {
    use pb::attribute_proto::AttributeType as A;
    let mut p = tiny_model();
    p.opset_import.push(opset("com.example.unknown", 3));
    let gp = p.graph.as_mut().unwrap();
    let mut frob = node("Frobnicate", "frob", &["y", "", "w"], &["f0", "", "f2"]);
    frob.domain = Some("com.example.unknown".into());
    frob.overload = Some("v2".into());
    frob.attribute = vec![
        pb::AttributeProto {
            name: Some("axes".into()),
            r#type: Some(A::Ints as i32),
            ints: vec![1, -1, i64::MAX],
            ..Default::default()
        },
        pb::AttributeProto {
            name: Some("modes".into()),
            r#type: Some(A::Strings as i32),
            strings: vec![b"fast".to_vec().into(), vec![0xff, 0x00].into()],
            ..Default::default()
        },
        pb::AttributeProto {
            name: Some("table".into()),
            r#type: Some(A::Tensor as i32),
            t: Some(pb::TensorProto {
                dims: vec![2],
                data_type: Some(1),
                float_data: vec![1.5, -0.0],
                doc_string: Some("typed field, not raw".into()),
                ..Default::default()
            }),
            doc_string: Some("attribute doc".into()),
            ..Default::default()
        },
        pb::AttributeProto {
            name: Some("gains".into()),
            r#type: Some(A::Floats as i32),
            floats: vec![0.5, f32::MIN_POSITIVE, -2.0],
            ..Default::default()
        },
        pb::AttributeProto {
            name: Some("future".into()),
            r#type: Some(42), // an attribute type this build does not know
            i: Some(7),
            ..Default::default()
        },
    ];
    gp.node.push(frob);
    let m = assert_lossless("unknown op", &p);
    let f = m.graph.node(node_id(&m.graph, "frob")).unwrap();
    assert_eq!(f.domain(), "com.example.unknown");
    assert_eq!(f.inputs()[1], None);
    assert_eq!(f.outputs()[1], None);
    assert_eq!(f.attributes.len(), 5);
    assert!(f.attributes.iter().all(|a| a.subgraphs.is_empty()));
}

#[test]
fn lossless_doc_strings_and_metadata_everywhere() {
    let mut p = tiny_model();
    p.doc_string = Some("model doc".into());
    p.producer_version = Some("1.2.3".into());
    p.domain = Some("org.example".into());
    p.model_version = Some(42);
    p.metadata_props = vec![entry("author", "me"), entry("license", "MIT")];
    let gp = p.graph.as_mut().unwrap();
    gp.doc_string = Some("graph doc".into());
    gp.metadata_props = vec![entry("graph-key", "graph-value")];
    gp.quantization_annotation = vec![pb::TensorAnnotation {
        tensor_name: Some("z".into()),
        quant_parameter_tensor_names: vec![entry("SCALE_TENSOR", "b")],
    }];
    gp.node[1].doc_string = Some("node doc".into());
    gp.node[1].metadata_props = vec![entry("node-key", "v")];
    gp.node[2].domain = Some("ai.onnx".into()); // explicit default domain
    gp.input[0].doc_string = Some("input doc".into());
    gp.input[0].metadata_props = vec![entry("input-key", "v")];
    gp.output[0].doc_string = Some("output doc".into());
    let mut vi = f32_info("xw", &[1, 3]);
    vi.doc_string = Some("value_info doc".into());
    vi.metadata_props = vec![entry("vi-key", "v")];
    gp.value_info.push(vi);
    gp.initializer[1].doc_string = Some("tensor doc".into());
    gp.initializer[1].metadata_props = vec![entry("tensor-key", "v")];
    let m = assert_lossless("docs and metadata", &p);
    assert_eq!(
        m.graph.node(node_id(&m.graph, "relu")).unwrap().domain(),
        ""
    );
}

#[test]
fn lossless_model_functions() {
    let mut p = tiny_model();
    p.opset_import.push(opset("com.example", 1));
    let mut konst = node("Constant", "k", &[], &["two"]);
    konst.attribute = vec![pb::AttributeProto {
        name: Some("value".into()),
        r#type: Some(pb::attribute_proto::AttributeType::Tensor as i32),
        t: Some(pb::TensorProto {
            data_type: Some(1),
            float_data: vec![2.0],
            ..Default::default()
        }),
        ..Default::default()
    }];
    p.functions = vec![pb::FunctionProto {
        name: Some("ScaleAdd".into()),
        domain: Some("com.example".into()),
        input: vec!["a".into(), "b".into()],
        output: vec!["c".into()],
        attribute: vec!["alpha".into()],
        node: vec![
            konst,
            node("Mul", "m", &["a", "two"], &["a2"]),
            node("Add", "a", &["a2", "b"], &["c"]),
        ],
        opset_import: vec![opset("", 17)],
        doc_string: Some("function doc".into()),
        value_info: vec![f32_info("a2", &[1, 3])],
        metadata_props: vec![entry("fk", "fv")],
        ..Default::default()
    }];
    let gp = p.graph.as_mut().unwrap();
    let mut call = node("ScaleAdd", "call", &["y", "b"], &["out"]);
    call.domain = Some("com.example".into());
    gp.node.push(call);
    gp.output.push(f32_info("out", &[1, 3]));
    let m = assert_lossless("functions", &p);
    assert_eq!(m.proto.functions.len(), 1);
}

#[test]
fn lossless_training_info() {
    let mut p = tiny_model();
    p.training_info = vec![pb::TrainingInfoProto {
        initialization: Some(pb::GraphProto {
            name: Some("init".into()),
            node: vec![node("RandomNormal", "rn", &[], &["w_init"])],
            output: vec![f32_info("w_init", &[4, 3])],
            ..Default::default()
        }),
        algorithm: Some(pb::GraphProto {
            name: Some("step".into()),
            node: vec![node("Sub", "upd", &["w", "lr"], &["w_new"])],
            initializer: vec![f32_tensor("lr", &[1], &[0.01])],
            output: vec![f32_info("w_new", &[4, 3])],
            ..Default::default()
        }),
        initialization_binding: vec![entry("w", "w_init")],
        update_binding: vec![entry("w", "w_new")],
    }];
    let m = assert_lossless("training info", &p);
    assert_eq!(m.proto.training_info.len(), 1);
}

#[test]
fn lossless_omitted_optional_inputs_and_outputs() {
    let mut graph = pb::GraphProto {
        name: Some("optional".into()),
        node: vec![
            node("Clip", "clip", &["x", "", "hi"], &["c"]),
            node("Clip", "clip_none", &["c", "", ""], &["c2"]),
            node("Dropout", "drop", &["c2"], &["y", ""]),
        ],
        initializer: vec![pb::TensorProto {
            name: Some("hi".into()),
            ..scalar_f32(6.0)
        }],
        input: vec![f32_info("x", &[1, 3])],
        output: vec![f32_info("y", &[1, 3])],
        ..Default::default()
    };
    let mut lstm = node("LSTM", "lstm", &["x3", "W", "R"], &["", "Y_h"]);
    lstm.attribute = vec![pb::AttributeProto {
        name: Some("hidden_size".into()),
        r#type: Some(pb::attribute_proto::AttributeType::Int as i32),
        i: Some(1),
        ..Default::default()
    }];
    graph.node.push(lstm);
    graph.input.push(f32_info("x3", &[1, 1, 1]));
    graph
        .initializer
        .push(f32_tensor("W", &[1, 4, 1], &[0.0; 4]));
    graph
        .initializer
        .push(f32_tensor("R", &[1, 4, 1], &[0.0; 4]));
    graph.output.push(f32_info("Y_h", &[1, 1, 1]));
    let m = assert_lossless(
        "optional inputs/outputs",
        &model_with(graph, vec![opset("", 17)]),
    );
    let g = &m.graph;
    let clip = g.node(node_id(g, "clip")).unwrap();
    assert_eq!(clip.inputs()[1], None);
    assert!(clip.inputs()[2].is_some());
    assert_eq!(
        g.node(node_id(g, "clip_none")).unwrap().inputs()[1..],
        [None, None]
    );
    assert_eq!(g.node(node_id(g, "drop")).unwrap().outputs()[1], None);
    let lstm = g.node(node_id(g, "lstm")).unwrap();
    assert_eq!(lstm.outputs()[0], None);
    assert!(lstm.outputs()[1].is_some());
}

#[test]
fn lossless_value_info_for_a_value_that_exists_nowhere() {
    let mut p = tiny_model();
    let gp = p.graph.as_mut().unwrap();
    gp.value_info.push(f32_info("xw", &[1, 3]));
    gp.value_info.push(f32_info("phantom", &[7]));
    let m = assert_lossless("phantom value_info", &p);
    let ph = value(&m.graph, "phantom");
    assert!(matches!(m.graph.value(ph).def(), Def::Declared));
    assert!(m.graph.value(ph).uses().is_empty());
}

#[test]
fn lossless_initializer_listed_as_graph_input() {
    let mut p = tiny_model();
    p.ir_version = Some(3);
    p.opset_import = vec![opset("", 8)];
    let gp = p.graph.as_mut().unwrap();
    gp.input.push(f32_info("w", &[4, 3]));
    gp.input.push(f32_info("b", &[3]));
    let m = assert_lossless("IR 3 initializer inputs", &p);
    let g = &m.graph;
    assert_eq!(g.inputs().len(), 3);
    for (i, name) in [(1, "w"), (2, "b")] {
        let v = g.inputs()[i].value;
        assert_eq!(g.value(v).name(), name);
        assert!(matches!(g.value(v).def(), Def::Initializer(_)));
    }
    assert_eq!(g.initializers().len(), 2);
}

#[test]
fn lossless_sparse_initializer() {
    let mut p = tiny_model();
    let gp = p.graph.as_mut().unwrap();
    gp.initializer.remove(0); // w becomes sparse
    gp.sparse_initializer = vec![pb::SparseTensorProto {
        values: Some(pb::TensorProto {
            name: Some("w".into()),
            ..f32_tensor("", &[3], &[1.0, -2.0, 0.5])
        }),
        indices: Some(pb::TensorProto {
            dims: vec![3],
            data_type: Some(7),
            int64_data: vec![0, 5, 11],
            ..Default::default()
        }),
        dims: vec![4, 3],
    }];
    let m = assert_lossless("sparse initializer", &p);
    let w = value(&m.graph, "w");
    assert!(matches!(m.graph.value(w).def(), Def::SparseInitializer(_)));
    assert_eq!(m.graph.sparse_initializers(), &[w]);
}

#[test]
fn unsorted_file_loads_and_saves_sorted() {
    let mut p = tiny_model();
    p.graph.as_mut().unwrap().node.reverse(); // Relu, Add, MatMul
    let bytes = p.encode_to_vec();
    let m = decode(&bytes);
    check(&m.graph, "loading an unsorted file");
    let out = m.to_bytes().unwrap();
    assert!(out != bytes);
    assert_eq!(
        out,
        tiny_model().encode_to_vec(),
        "saving sorts the nodes and changes nothing else"
    );
    let back = decode(&out);
    check(&back.graph, "reload");
    assert_eq!(back.to_bytes().unwrap(), out);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sorted.onnx");
    save(&m, &path, &Layout::Inline).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), out);
}

// ---- 5. typed-field tensors through external data ----

fn f32_le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64_le(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The external layout with the smallest threshold `save` accepts.
fn external(location: &str) -> Layout {
    Layout::External {
        location: location.into(),
        threshold: onnxq_ir::DEFAULT_THRESHOLD,
    }
}

/// `tiny_model` with a Reshape at the end and typed-field (not raw_data) initializers: three large
/// enough to move out (float_data, int64_data, float16 in int32_data), a small int64 shape and an
/// empty tensor that stay inline.
fn typed_model() -> pb::ModelProto {
    let mut p = tiny_model();
    let gp = p.graph.as_mut().unwrap();
    gp.initializer.push(pb::TensorProto {
        name: Some("f32_table".into()),
        dims: vec![16, 16],
        data_type: Some(1),
        // Exactly the threshold (1024 bytes): moves.
        float_data: (0..256).map(|i| i as f32 * -0.75 + 0.1).collect(),
        ..Default::default()
    });
    gp.initializer.push(pb::TensorProto {
        name: Some("i64_table".into()),
        dims: vec![160],
        data_type: Some(7),
        int64_data: (0..160).map(|i| (i - 80) * 0x0102_0304_0506).collect(),
        ..Default::default()
    });
    // float16 in int32_data (one element per entry, low 16 bits).
    gp.initializer.push(pb::TensorProto {
        name: Some("f16_table".into()),
        dims: vec![600],
        data_type: Some(10),
        int32_data: (0..600).map(|i| [0x3c00, 0xbc00, 0x7bff][i % 3]).collect(),
        ..Default::default()
    });
    gp.initializer.push(pb::TensorProto {
        name: Some("shape".into()),
        dims: vec![2],
        data_type: Some(7),
        int64_data: vec![1, -1],
        ..Default::default()
    });
    gp.initializer.push(pb::TensorProto {
        name: Some("empty".into()),
        dims: vec![0],
        data_type: Some(1),
        ..Default::default()
    });
    let last = gp.node.len() - 1;
    gp.node[last].output = vec!["r".into()];
    gp.node
        .push(node("Reshape", "reshape", &["r", "shape"], &["y"]));
    p
}

#[test]
fn typed_field_tensors_move_to_external_data_as_little_endian_bytes() {
    let p = typed_model();
    let gp = p.graph.as_ref().unwrap();
    let m = load_proto(&p);
    let expected: Vec<(String, Vec<u8>)> = gp
        .initializer
        .iter()
        .map(|t| (t.name().to_owned(), raw_bytes(t).unwrap().to_vec()))
        .collect();
    let names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "w",
            "b",
            "f32_table",
            "i64_table",
            "f16_table",
            "shape",
            "empty"
        ]
    );
    assert_eq!(expected[2].1, f32_le(&gp.initializer[2].float_data));
    assert_eq!(expected[3].1, i64_le(&gp.initializer[3].int64_data));
    assert_eq!(expected[4].1.len(), 1200);
    assert_eq!(&expected[4].1[..6], [0x00, 0x3c, 0x00, 0xbc, 0xff, 0x7b]);
    let moves = |name: &str| matches!(name, "f32_table" | "i64_table" | "f16_table");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typed.onnx");
    let saved = save(&m, &path, &external("typed.onnx.data")).unwrap();
    assert_eq!(saved.external_tensors, 3, "the three tables move");
    assert_eq!(saved.data_location.as_deref(), Some("typed.onnx.data"));

    // The file itself: external references, typed fields cleared, bytes little-endian in the data.
    let data = std::fs::read(dir.path().join("typed.onnx.data")).unwrap();
    assert_eq!(saved.data_bytes, data.len() as u64);
    let file = pb::ModelProto::decode(&std::fs::read(&path).unwrap()[..]).unwrap();
    let file_graph = file.graph.unwrap();
    assert_eq!(file_graph.initializer.len(), expected.len());
    for (t, (name, want)) in file_graph.initializer.iter().zip(&expected) {
        assert_eq!(t.name(), name);
        let original = &gp.initializer.iter().find(|i| i.name() == name).unwrap();
        if !moves(name) {
            assert!(t.external_data.is_empty(), "{name}: moved");
            assert_eq!(t, *original, "{name}: inline tensor changed");
            continue;
        }
        assert_eq!(
            t.data_location,
            Some(pb::tensor_proto::DataLocation::External as i32),
            "{name}"
        );
        assert!(
            t.raw_data.is_none()
                && t.float_data.is_empty()
                && t.int64_data.is_empty()
                && t.int32_data.is_empty(),
            "{name}: data left inline"
        );
        assert_eq!((&t.dims, t.data_type), (&original.dims, original.data_type));
        let get = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key() == k)
                .map(|e| e.value().to_owned())
                .unwrap_or_else(|| panic!("{name}: no `{k}`"))
        };
        assert_eq!(get("location"), "typed.onnx.data");
        let off: usize = get("offset").parse().unwrap();
        let len: usize = get("length").parse().unwrap();
        assert_eq!(off % 64, 0, "{name}: offset {off} not aligned");
        assert_eq!(
            &data[off..off + len],
            &want[..],
            "{name}: bytes in the data file"
        );
    }

    let back = load(&path).unwrap();
    check(&back.graph, "reload");
    assert_eq!(back.external_files().len(), 1);
    assert_eq!(back.external_files()[0].tensors, 3);
    for (name, want) in &expected {
        let v = value(&back.graph, name);
        let t = back.graph.value(v).initializer().unwrap();
        assert_eq!(
            raw_bytes(t).unwrap().to_vec(),
            *want,
            "{name}: reloaded values differ"
        );
        let original = gp.initializer.iter().find(|i| i.name() == name).unwrap();
        assert_eq!((&t.dims, t.data_type), (&original.dims, original.data_type));
    }
    // Back to inline: the same graph, the moved tensors now as raw_data.
    let inline = dir.path().join("inline.onnx");
    save(&back, &inline, &Layout::Inline).unwrap();
    let again = load(&inline).unwrap();
    check(&again.graph, "inline reload");
    assert!(again.external_files().is_empty());
    assert_eq!(
        op_order(&saved_graph(&again)),
        ["MatMul", "Add", "Relu", "Reshape"]
    );
    for (name, want) in &expected {
        let t = again
            .graph
            .value(value(&again.graph, name))
            .initializer()
            .unwrap();
        assert_eq!(
            raw_bytes(t).unwrap().to_vec(),
            *want,
            "{name}: inline again"
        );
    }
}

#[test]
fn typed_constant_value_moves_and_sparse_tensors_stay_inline() {
    let mut p = typed_model();
    let gp = p.graph.as_mut().unwrap();
    let doubles: Vec<f64> = (0..130).map(|i| f64::from(i) * 1.25 - 3.5).collect();
    let mut konst = node("Constant", "k", &[], &["kval"]);
    konst.attribute = vec![pb::AttributeProto {
        name: Some("value".into()),
        r#type: Some(pb::attribute_proto::AttributeType::Tensor as i32),
        t: Some(pb::TensorProto {
            dims: vec![130],
            data_type: Some(11),
            double_data: doubles.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }];
    gp.node.push(konst);
    gp.output.push(info("kval", 11, &[130]));
    let sparse = pb::SparseTensorProto {
        values: Some(pb::TensorProto {
            name: Some("sp".into()),
            dims: vec![300],
            data_type: Some(1),
            float_data: (0..300).map(|i| i as f32).collect(),
            ..Default::default()
        }),
        indices: Some(pb::TensorProto {
            dims: vec![300],
            data_type: Some(7),
            int64_data: (0..300).map(|i| i * 2).collect(),
            ..Default::default()
        }),
        dims: vec![600],
    };
    gp.sparse_initializer = vec![sparse.clone()];
    let m = load_proto(&p);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let saved = save(&m, &path, &external("m.onnx.data")).unwrap();
    assert_eq!(saved.external_tensors, 4, "three tables and the Constant");

    let file = pb::ModelProto::decode(&std::fs::read(&path).unwrap()[..]).unwrap();
    let fg = file.graph.unwrap();
    let k = fg.node.iter().find(|n| n.name() == "k").unwrap();
    assert_eq!(
        k.attribute[0].t.as_ref().unwrap().data_location,
        Some(pb::tensor_proto::DataLocation::External as i32)
    );
    assert_eq!(
        fg.sparse_initializer,
        [sparse],
        "sparse tensors stay as they were"
    );

    let back = load(&path).unwrap();
    check(&back.graph, "reload");
    let gb = saved_graph(&back);
    let k = gb.node.iter().find(|n| n.name() == "k").unwrap();
    let kt = k.attribute[0].t.as_ref().unwrap();
    let want: Vec<u8> = doubles.iter().flat_map(|d| d.to_le_bytes()).collect();
    assert_eq!(raw_bytes(kt).unwrap().to_vec(), want);
    assert_eq!(
        gb.sparse_initializer[0].values.as_ref().unwrap().name(),
        "sp"
    );
}

// ---- 6. determinism ----

fn save_in(dir: &Path, m: &Model) -> (Vec<u8>, Vec<u8>) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("model.onnx");
    save(m, &path, &external("model.onnx.data")).unwrap();
    (
        std::fs::read(&path).unwrap(),
        std::fs::read(dir.join("model.onnx.data")).unwrap(),
    )
}

#[test]
fn saving_twice_gives_identical_files() {
    let mut p = typed_model();
    // A tensor over 1 MiB, so the 64 KiB alignment padding is exercised.
    let big: Vec<f32> = (0..300_000).map(|i| (i % 977) as f32 * 0.001).collect();
    let gp = p.graph.as_mut().unwrap();
    gp.initializer.push(f32_tensor("big", &[300_000], &big));
    gp.initializer
        .push(f32_tensor("after_big", &[300], &[0.5; 300]));
    let m = load_proto(&p);
    let dir = tempfile::tempdir().unwrap();
    let (a_model, a_data) = save_in(&dir.path().join("a"), &m);
    let (b_model, b_data) = save_in(&dir.path().join("b"), &m);
    assert!(a_model == b_model, "model files differ");
    assert!(a_data == b_data, "data files differ");
    // Over the same files again.
    let (c_model, c_data) = save_in(&dir.path().join("a"), &m);
    assert!(
        a_model == c_model && a_data == c_data,
        "re-saving in place differs"
    );
    // A reloaded model saves to the same bytes as the original.
    let back = load(&dir.path().join("a/model.onnx")).unwrap();
    let (d_model, d_data) = save_in(&dir.path().join("d"), &back);
    assert!(a_model == d_model, "reloaded model saves differently");
    assert!(a_data == d_data, "reloaded data saves differently");
    let bv = value(&back.graph, "big");
    assert_eq!(
        raw_bytes(back.graph.value(bv).initializer().unwrap())
            .unwrap()
            .to_vec(),
        f32_le(&big)
    );
    // The tensor after the big one starts on a 64 KiB boundary only if it is big itself: 64 bytes.
    let file = pb::ModelProto::decode(&a_model[..]).unwrap();
    let offsets: Vec<u64> = file
        .graph
        .unwrap()
        .initializer
        .iter()
        .filter_map(|t| {
            t.external_data
                .iter()
                .find(|e| e.key() == "offset")
                .map(|e| e.value().parse().unwrap())
        })
        .collect();
    assert_eq!(offsets.len(), 5);
    assert_eq!(offsets[3] % 65536, 0, "big tensor offset {}", offsets[3]);
    assert!(offsets.iter().all(|o| o % 64 == 0), "{offsets:?}");
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
