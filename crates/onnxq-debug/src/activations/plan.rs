//! What a comparison reads: the activations of the float model, each with its Q/DQ pair and
//! counterpart in the quantized model, and the outputs the two share.

use std::collections::{BTreeMap, BTreeSet};

use onnxq_ir::{Def, Graph, Model};

use super::params;
use crate::order::{Order, label};

/// The quantized tensor a float activation is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Counterpart {
    /// A float32 tensor of the quantized model.
    Float(String),
    /// An integer tensor, dequantized as `(q − zero_point) · scale`.
    Dequantized {
        /// The tensor.
        tensor: String,
        /// Its scale.
        scale: f64,
        /// Its zero point.
        zero_point: f64,
    },
}

impl Counterpart {
    /// The quantized model's tensor read.
    pub fn tensor(&self) -> &str {
        match self {
            Counterpart::Float(t) | Counterpart::Dequantized { tensor: t, .. } => t,
        }
    }
}

/// One float activation to compare.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Its name in the float model.
    pub name: String,
    /// Its position in the float model's graph order.
    pub index: usize,
    /// The float node writing it, and that node's op type.
    pub producer: Option<(String, String)>,
    /// The float tensors the producer reads (for the drop).
    pub inputs: Vec<String>,
    /// The Q/DQ pair of the quantized model keyed on it: (pre, post).
    pub pair: Option<(String, String)>,
    /// What the float tensor is compared with.
    pub counterpart: Option<Counterpart>,
}

/// What one comparison run reads.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The activations, in graph order.
    pub items: Vec<Item>,
    /// Model outputs present in both models, in the float model's order.
    pub outputs: Vec<String>,
}

/// Every node output of the main graph, in arena order, named once.
pub fn node_outputs(g: &Graph) -> Vec<String> {
    let mut seen = BTreeSet::new();
    g.nodes()
        .flat_map(|(_, n)| n.outputs().iter().flatten().copied())
        .map(|v| g.value(v).name().to_owned())
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

/// ONNX Runtime's key of a Q/DQ pair (`create_activation_matching`'s suffix rules), or the
/// pre-QDQ name when neither name carries a suffix.
fn pair_key(pre: &str, post: &str) -> String {
    for suffix in ["_DequantizeLinear_Output", "_DequantizeLinear_Output_1"] {
        if post.strip_suffix(suffix) == Some(pre) {
            return pre.to_owned();
        }
    }
    if pre.strip_suffix("_QuantizeLinear_Input") == Some(post) {
        return post.to_owned();
    }
    pre.to_owned()
}

/// The Q/DQ pairs on activations of `g` by key: (pre, post), the first pair of a key kept.
pub(crate) fn qdq_pairs(g: &Graph) -> BTreeMap<String, (String, String)> {
    let mut pairs = BTreeMap::new();
    for id in g.topological_order().unwrap_or_default() {
        let Some(q) = g.node(id) else { continue };
        if q.op_type() != "QuantizeLinear" {
            continue;
        }
        let (Some(Some(x)), Some(Some(y))) = (q.inputs().first(), q.outputs().first()) else {
            continue;
        };
        // Only initializers are skipped: a Constant node's output is a tensor ONNX Runtime's
        // tool quantizes (and its debugger measures) as an activation.
        if matches!(g.value(*x).def(), Def::Initializer(_)) {
            continue;
        }
        for reader in g.reader_nodes(*y) {
            let Some(dq) = g.node(reader) else { continue };
            if dq.op_type() != "DequantizeLinear" {
                continue;
            }
            if let Some(Some(out)) = dq.outputs().first() {
                let (pre, post) = (g.value(*x).name(), g.value(*out).name());
                pairs
                    .entry(pair_key(pre, post))
                    .or_insert_with(|| (pre.to_owned(), post.to_owned()));
            }
        }
    }
    pairs
}

/// The node outputs each augmented model must expose: float tensors with a possible counterpart
/// in the quantized model (same name, a Q/DQ pair keyed on it, or `X_quantized`), and those
/// counterparts and pair members. Weight DequantizeLinear outputs and the integer outputs of
/// QuantizeLinear are left out: nothing compares them, and copying them out costs time.
pub fn wanted(float: &Graph, quant: &Graph) -> (Vec<String>, Vec<String>) {
    let quant_names: BTreeSet<String> = node_outputs(quant).into_iter().collect();
    let pairs = qdq_pairs(quant);
    let mut q: BTreeSet<String> = BTreeSet::new();
    // Graph inputs come from the feeds, but their Q/DQ pairs' outputs must be exposed too.
    let inputs: Vec<String> = float
        .inputs()
        .iter()
        .filter(|p| matches!(float.value(p.value).def(), Def::Input))
        .map(|p| float.value(p.value).name().to_owned())
        .collect();
    let outputs = node_outputs(float);
    let f: Vec<String> = inputs
        .iter()
        .chain(&outputs)
        .filter(|&n| {
            let quantized = format!("{n}_quantized");
            let mut hit = false;
            if quant_names.contains(n) {
                q.insert(n.to_owned());
                hit = true;
            }
            if quant_names.contains(&quantized) {
                q.insert(quantized);
                hit = true;
            }
            if let Some((pre, post)) = pairs.get(n) {
                q.extend([pre.clone(), post.clone()]);
                hit = true;
            }
            hit
        })
        .filter(|&n| !inputs.contains(n))
        .cloned()
        .collect();
    // Pair members that are node outputs (a graph input is read from the feeds).
    let q = q.into_iter().filter(|n| quant_names.contains(n)).collect();
    (f, q)
}

/// Plans the comparison of `float` and `quant`, given the element types their engines resolve
/// for the augmented models (name → ONNX type code; graph inputs included).
pub fn plan(
    float: &Model,
    quant: &Model,
    order: &Order,
    float_types: &BTreeMap<String, i32>,
    quant_types: &BTreeMap<String, i32>,
) -> Plan {
    let (fg, qg) = (&float.graph, &quant.graph);
    let pairs = qdq_pairs(qg);
    let is_float = |types: &BTreeMap<String, i32>, n: &str| types.get(n) == Some(&1);
    let mut items = Vec::new();
    for (index, name) in order.names.iter().enumerate() {
        if !is_float(float_types, name) {
            continue;
        }
        let pair = pairs
            .get(name)
            .filter(|(pre, post)| is_float(quant_types, pre) && is_float(quant_types, post))
            .cloned();
        let counterpart = match &pair {
            Some((_, post)) => Some(Counterpart::Float(post.clone())),
            None if is_float(quant_types, name) => Some(Counterpart::Float(name.clone())),
            None => {
                let tensor = format!("{name}_quantized");
                params::dequantized(qg, &tensor).map(|(scale, zero_point)| {
                    Counterpart::Dequantized {
                        tensor,
                        scale,
                        zero_point,
                    }
                })
            }
        };
        if pair.is_none() && counterpart.is_none() {
            continue;
        }
        let producer = order.producer(name).and_then(|id| Some((id, fg.node(id)?)));
        let inputs = producer.map_or_else(Vec::new, |(_, n)| {
            n.inputs()
                .iter()
                .flatten()
                .filter(|v| !matches!(fg.value(**v).def(), Def::Initializer(_)))
                .map(|v| fg.value(*v).name().to_owned())
                .collect()
        });
        items.push(Item {
            name: name.clone(),
            index,
            producer: producer.map(|(id, n)| (label(fg, id), n.op_type().to_owned())),
            inputs,
            pair,
            counterpart,
        });
    }
    let quant_outputs: BTreeSet<&str> = qg
        .outputs()
        .iter()
        .map(|p| qg.value(p.value).name())
        .collect();
    let outputs = fg
        .outputs()
        .iter()
        .map(|p| fg.value(p.value).name().to_owned())
        .filter(|n| quant_outputs.contains(n.as_str()))
        .collect();
    Plan { items, outputs }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ORT's three suffix rules, and a plain pair keyed on its input.
    #[test]
    fn pairs_are_keyed_as_onnx_runtime_keys_them() {
        assert_eq!(pair_key("x", "x_DequantizeLinear_Output"), "x");
        assert_eq!(pair_key("x", "x_DequantizeLinear_Output_1"), "x");
        assert_eq!(pair_key("y_QuantizeLinear_Input", "y"), "y");
        assert_eq!(pair_key("a", "b"), "a");
    }
}
