//! `onnxq inspect`: a summary of a model for people (text) or scripts (`--json`).

use std::collections::BTreeMap;

use anyhow::Result;
use onnxq_ir::proto as pb;
use onnxq_ir::{DataType, Def, Graph, Model, ValueId, load, tensor};
use serde::Serialize;

use crate::args::InspectArgs;

/// Everything `inspect` reports; the JSON form is this struct.
#[derive(Debug, Serialize)]
struct Summary {
    path: String,
    ir_version: i64,
    producer: String,
    producer_version: String,
    opset_imports: BTreeMap<String, i64>,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
    nodes: usize,
    subgraphs: usize,
    op_types: BTreeMap<String, usize>,
    initializers: TensorStats,
    constant_nodes: TensorStats,
    external_data: Vec<External>,
    functions: usize,
    metadata: BTreeMap<String, String>,
    /// Op type → (nodes, nodes whose weight is a constant a quantizer can rewrite offline).
    quantizable: BTreeMap<String, Quantizable>,
}

#[derive(Debug, Serialize)]
struct Port {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    /// Dimensions: a number, a symbolic name, or null when unknown; null when the rank is unknown.
    shape: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Default, Serialize)]
struct TensorStats {
    count: usize,
    bytes: u64,
    by_dtype: BTreeMap<String, DtypeStats>,
}

#[derive(Debug, Default, Serialize)]
struct DtypeStats {
    count: usize,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct External {
    location: String,
    file_bytes: u64,
    tensors: u64,
    tensor_bytes: u64,
}

#[derive(Debug, Default, Serialize)]
struct Quantizable {
    nodes: usize,
    constant_weight: usize,
}

/// Op types ONNX Runtime's quantizer rewrites with a constant weight, and the input slots holding
/// the weights. (Activation-only ops such as Add or Relu are quantizable too in static mode; they
/// need no weight and are counted in `op_types`.)
const WEIGHTED_OPS: &[(&str, &[usize])] = &[
    ("Conv", &[1]),
    ("ConvTranspose", &[1]),
    ("MatMul", &[1]),
    ("Gemm", &[1]),
    ("Gather", &[0]),
    ("LSTM", &[1, 2]),
    ("GRU", &[1, 2]),
    ("Attention", &[1]),
    ("EmbedLayerNormalization", &[2]),
];

pub(crate) fn run(a: &InspectArgs) -> Result<()> {
    let model = load(&a.model)?;
    if a.shapes {
        let inf = onnxq_infer::infer(&model)?;
        let s = crate::shapes::shapes(&model, &inf);
        if a.json {
            print_out(&serde_json::to_string_pretty(&s)?);
        } else {
            print_out(&crate::shapes::render(&s));
        }
        return Ok(());
    }
    let s = summarize(&model, &a.model.display().to_string());
    if a.json {
        print_out(&serde_json::to_string_pretty(&s)?);
    } else {
        print_out(&render(&s));
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_out(s: &str) {
    println!("{s}");
}

fn summarize(model: &Model, path: &str) -> Summary {
    let p = &model.proto;
    let mut s = Summary {
        path: path.to_owned(),
        ir_version: p.ir_version(),
        producer: p.producer_name().to_owned(),
        producer_version: p.producer_version().to_owned(),
        opset_imports: p
            .opset_import
            .iter()
            .map(|o| (domain_name(o.domain()).to_owned(), o.version()))
            .collect(),
        inputs: model
            .graph
            .inputs()
            .iter()
            .filter(|i| !matches!(model.graph.value(i.value).def(), Def::Initializer(_)))
            .map(|i| port(&model.graph, i))
            .collect(),
        outputs: model
            .graph
            .outputs()
            .iter()
            .map(|o| port(&model.graph, o))
            .collect(),
        nodes: 0,
        subgraphs: 0,
        op_types: BTreeMap::new(),
        initializers: TensorStats::default(),
        constant_nodes: TensorStats::default(),
        external_data: model
            .external_files()
            .iter()
            .map(|f| External {
                location: f.location.clone(),
                file_bytes: f.size,
                tensors: f.tensors,
                tensor_bytes: f.bytes,
            })
            .collect(),
        functions: p.functions.len(),
        metadata: p
            .metadata_props
            .iter()
            .map(|kv| (kv.key().to_owned(), kv.value().to_owned()))
            .collect(),
        quantizable: BTreeMap::new(),
    };
    walk(&model.graph, &mut Vec::new(), &mut s);
    s
}

fn domain_name(d: &str) -> &str {
    if d.is_empty() { "ai.onnx" } else { d }
}

fn add(stats: &mut TensorStats, t: &pb::TensorProto) {
    let bytes = tensor::data_len(t);
    stats.count += 1;
    stats.bytes += bytes;
    let e = stats
        .by_dtype
        .entry(DataType(t.data_type()).to_string())
        .or_default();
    e.count += 1;
    e.bytes += bytes;
}

/// Visits a graph and its subgraphs; `outer` holds the enclosing graphs, innermost last, so
/// weights referred to from inside a subgraph are found where they are defined.
fn walk<'g>(g: &'g Graph, outer: &mut Vec<&'g Graph>, s: &mut Summary) {
    for v in g.initializers() {
        if let Some(t) = g.value(v).initializer() {
            add(&mut s.initializers, t);
        }
    }
    for (_, node) in g.nodes() {
        s.nodes += 1;
        let key = match node.domain() {
            "" => node.op_type().to_owned(),
            d => format!("{d}::{}", node.op_type()),
        };
        *s.op_types.entry(key).or_default() += 1;
        if node.op_type() == "Constant"
            && node.domain().is_empty()
            && let Some(t) = node.attribute("value").and_then(|a| a.proto.t.as_ref())
        {
            add(&mut s.constant_nodes, t);
        }
        if let Some((op, slots)) = WEIGHTED_OPS.iter().find(|(op, _)| *op == node.op_type()) {
            let q = s.quantizable.entry((*op).to_owned()).or_default();
            q.nodes += 1;
            let weights = slots
                .iter()
                .filter_map(|&i| node.inputs().get(i).copied().flatten());
            let mut any = false;
            let mut all = true;
            for w in weights {
                any = true;
                all &= is_constant(g, outer, w);
            }
            if any && all {
                q.constant_weight += 1;
            }
        }
        outer.push(g);
        for a in &node.attributes {
            for sub in &a.subgraphs {
                s.subgraphs += 1;
                walk(sub, outer, s);
            }
        }
        outer.pop();
    }
}

/// Whether a value is a constant: an initializer, a Constant node's output, an Identity of a
/// constant, or such a value of an enclosing graph.
fn is_constant(g: &Graph, outer: &[&Graph], v: ValueId) -> bool {
    match g.value(v).def() {
        Def::Initializer(_) | Def::SparseInitializer(_) => true,
        Def::Node { node, .. } => g.node(*node).is_some_and(|n| match n.op_type() {
            "Constant" => true,
            "Identity" => n
                .inputs()
                .first()
                .copied()
                .flatten()
                .is_some_and(|i| is_constant(g, outer, i)),
            _ => false,
        }),
        Def::Outer => outer.split_last().is_some_and(|(parent, rest)| {
            parent
                .value_by_name(g.value(v).name())
                .is_some_and(|pv| is_constant(parent, rest, pv))
        }),
        Def::Input | Def::Declared => false,
    }
}

fn port(g: &Graph, p: &onnxq_ir::Port) -> Port {
    let name = g.value(p.value).name().to_owned();
    let Some(ty) = p.info.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Port {
            name,
            ty: "?".into(),
            shape: None,
        };
    };
    use pb::type_proto::Value as T;
    let (ty, shape) = match ty {
        T::TensorType(t) => (DataType(t.elem_type()).to_string(), t.shape.as_ref()),
        T::SparseTensorType(t) => (
            format!("sparse {}", DataType(t.elem_type())),
            t.shape.as_ref(),
        ),
        T::SequenceType(_) => ("sequence".into(), None),
        T::MapType(_) => ("map".into(), None),
        T::OptionalType(_) => ("optional".into(), None),
        T::OpaqueType(o) => (format!("opaque {}", o.name()), None),
    };
    let shape = shape.map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => {
                    serde_json::Value::from(*v)
                }
                Some(pb::tensor_shape_proto::dimension::Value::DimParam(p)) => {
                    serde_json::Value::from(p.clone())
                }
                None => serde_json::Value::Null,
            })
            .collect()
    });
    Port { name, ty, shape }
}

fn render(s: &Summary) -> String {
    use std::fmt::Write;
    let hb = crate::util::human_bytes;
    let mut o = String::new();
    let _ = writeln!(o, "model         {}", s.path);
    let _ = writeln!(o, "ir_version    {}", s.ir_version);
    let _ = writeln!(o, "producer      {} {}", s.producer, s.producer_version);
    let opsets: Vec<String> = s
        .opset_imports
        .iter()
        .map(|(d, v)| format!("{d} {v}"))
        .collect();
    let _ = writeln!(o, "opsets        {}", opsets.join(", "));
    for (label, ports) in [("inputs", &s.inputs), ("outputs", &s.outputs)] {
        let _ = writeln!(o, "{label:<13} {}", ports.len());
        for p in ports {
            let shape = p.shape.as_ref().map_or_else(
                || "(rank unknown)".to_owned(),
                |d| {
                    format!(
                        "[{}]",
                        d.iter()
                            .map(|x| match x {
                                serde_json::Value::String(s) => s.clone(),
                                serde_json::Value::Null => "?".into(),
                                x => x.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            );
            let _ = writeln!(o, "  {}  {} {shape}", p.name, p.ty);
        }
    }
    let _ = writeln!(o, "nodes         {} ({} subgraphs)", s.nodes, s.subgraphs);
    let mut ops: Vec<(&String, &usize)> = s.op_types.iter().collect();
    ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let ops: Vec<String> = ops.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(o, "op types      {}", ops.join(", "));
    for (label, t) in [
        ("initializers", &s.initializers),
        ("constants", &s.constant_nodes),
    ] {
        let by: Vec<String> = t
            .by_dtype
            .iter()
            .map(|(d, x)| format!("{d} {} ({})", x.count, hb(x.bytes)))
            .collect();
        let _ = writeln!(
            o,
            "{label:<13} {} tensors, {}{}{}",
            t.count,
            hb(t.bytes),
            if by.is_empty() { "" } else { ": " },
            by.join(", ")
        );
    }
    if s.external_data.is_empty() {
        let _ = writeln!(o, "external data none");
    }
    for e in &s.external_data {
        let _ = writeln!(
            o,
            "external data {} ({}, {} tensors, {})",
            e.location,
            hb(e.file_bytes),
            e.tensors,
            hb(e.tensor_bytes)
        );
    }
    if s.functions > 0 {
        let _ = writeln!(o, "functions     {}", s.functions);
    }
    for (k, v) in &s.metadata {
        let flat: String = v
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let chars = flat.chars().count();
        let shown = if chars > 60 {
            format!(
                "{}... ({chars} characters; --json has it all)",
                flat.chars().take(60).collect::<String>()
            )
        } else {
            flat
        };
        let _ = writeln!(o, "metadata      {k} = {shown}");
    }
    let q: Vec<String> = s
        .quantizable
        .iter()
        .map(|(op, q)| {
            format!(
                "{op} {}/{} with constant weight",
                q.constant_weight, q.nodes
            )
        })
        .collect();
    let _ = write!(
        o,
        "quantizable   {}",
        if q.is_empty() {
            "no weighted ops".to_owned()
        } else {
            q.join(", ")
        }
    );
    o
}
