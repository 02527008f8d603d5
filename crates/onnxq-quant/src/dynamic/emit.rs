//! The dynamic pass's emit helpers, used by every op quantizer's `apply`: the values shared between
//! rewrites ([`Shared`]: one `DynamicQuantizeLinear` per activation, one set of initializers per
//! quantized weight), the integer-product rescale, and replacing the float node.

use std::collections::{BTreeMap, BTreeSet};

use onnxq_ir::proto as pb;
use onnxq_ir::{Graph, Node, NodeId, ValueId};

use crate::dynamic::plan::{Layout, WeightKey, WeightPlan};
use crate::edit::{add, init, int_attr, node_label, output, tensor};
use crate::error::{Error, Result};
use crate::numerics::{QuantizedTensor, to_storage};

/// Values created while applying, shared between nodes: one `DynamicQuantizeLinear` per activation
/// and one set of initializers per quantized weight.
pub struct Shared {
    /// Operator domains the emitted nodes need (beyond the default one).
    domains: BTreeSet<&'static str>,
    /// Values replaced by an earlier rewrite in this pass, to their replacements: plans were made
    /// before any edit, so they may name a value a neighbour's rewrite has since replaced.
    replaced: BTreeMap<ValueId, ValueId>,
    dynamic: BTreeMap<ValueId, [ValueId; 3]>,
    weights: BTreeMap<WeightKey, [ValueId; 3]>,
    quantized: BTreeMap<WeightKey, QuantizedTensor>,
}

impl Shared {
    /// The shared state of one graph's apply step, holding its quantized weights.
    pub(crate) fn new(quantized: BTreeMap<WeightKey, QuantizedTensor>) -> Shared {
        Shared {
            domains: BTreeSet::new(),
            replaced: BTreeMap::new(),
            dynamic: BTreeMap::new(),
            weights: BTreeMap::new(),
            quantized,
        }
    }

    /// The operator domains the emitted nodes need.
    pub(crate) fn into_domains(self) -> BTreeSet<&'static str> {
        self.domains
    }

    /// `DynamicQuantizeLinear` outputs (quantized, scale, zero point) for `v`, made once.
    pub(crate) fn dynamic(&mut self, g: &mut Graph, v: ValueId) -> Result<[ValueId; 3]> {
        let v = self.current(v);
        if let Some(x) = self.dynamic.get(&v) {
            return Ok(*x);
        }
        let name = g.value(v).name().to_owned();
        let outs = [
            format!("{name}_quantized"),
            format!("{name}_scale"),
            format!("{name}_zero_point"),
        ]
        .map(|n| g.fresh_name(&n));
        let node = Node::new(
            "DynamicQuantizeLinear",
            "",
            Some(format!("{name}_QuantizeLinear")),
        );
        let (_, o) = g
            .add_node(
                node,
                &[Some(v)],
                &[Some(&outs[0]), Some(&outs[1]), Some(&outs[2])],
            )
            .map_err(Error::edit)?;
        let x = [o[0], o[1], o[2]].map(|v| v.unwrap_or_else(|| unreachable!("named above")));
        self.dynamic.insert(v, x);
        Ok(x)
    }

    /// The quantized initializers (values, scale, zero point) of a planned weight, made once.
    pub(crate) fn weight(&mut self, g: &mut Graph, w: &WeightPlan) -> Result<[ValueId; 3]> {
        if let Some(x) = self.weights.get(&w.key) {
            return Ok(*x);
        }
        let q = self
            .quantized
            .remove(&w.key)
            .ok_or_else(|| Error::Internal(format!("weight `{}` was not quantized", w.name)))?;
        let qt = w.key.qtype;
        let param_dims = param_dims(w, q.params.len());
        let data = tensor(
            w.dims.iter().map(|&d| d as i64).collect(),
            qt.onnx_type(),
            q.data,
        );
        let scales = q
            .params
            .iter()
            .flat_map(|p| p.scale.to_le_bytes())
            .collect();
        let scale = tensor(param_dims.clone(), 1, scales);
        let mut zps: Vec<i32> = q.params.iter().map(|p| p.zero_point).collect();
        let mut zp_dims = param_dims;
        if w.key.layout == Layout::ConvChannels {
            if zps.iter().any(|&z| z != 0) {
                return Err(Error::Internal(format!(
                    "weight `{}`: per-channel zero points must all be 0",
                    w.name
                )));
            }
            zps.truncate(1);
            zp_dims = Vec::new();
        }
        let zero_point = tensor(zp_dims, qt.onnx_type(), to_storage(&zps, qt));
        let mut made = Vec::with_capacity(3);
        for (suffix, t) in [
            ("_quantized", data),
            ("_scale", scale),
            ("_zero_point", zero_point),
        ] {
            made.push(init(g, &format!("{}{suffix}", w.name), t)?);
        }
        let ids = [made[0], made[1], made[2]];
        self.weights.insert(w.key.clone(), ids);
        Ok(ids)
    }
}

/// The shape of a weight's scale and zero point for `n` parameter sets, by its stored layout.
fn param_dims(w: &WeightPlan, n: usize) -> Vec<i64> {
    match (w.key.layout, w.key.axis) {
        (Layout::Lstm { per_channel: true }, _) => vec![w.dims[0] as i64, w.dims[2] as i64],
        (Layout::Lstm { per_channel: false }, _) => vec![n as i64],
        (_, None) => Vec::new(),
        (Layout::ConvChannels, Some(_)) => {
            let mut d = vec![1i64; w.dims.len() - 1];
            d[0] = n as i64;
            d
        }
        (_, Some(_)) => vec![n as i64],
    }
}

/// Integer product → float: `Cast(int32 → float)` then `Mul` by the product of the two scales.
/// Returns the float output value (named `output`). Shared by MatMulInteger and ConvInteger.
pub(crate) fn rescale(
    g: &mut Graph,
    label: &str,
    int_out: ValueId,
    scales: [ValueId; 2],
    output: &str,
) -> Result<ValueId> {
    let int_name = g.value(int_out).name().to_owned();
    let cast = add(
        g,
        ("Cast", ""),
        &format!("{int_name}_cast"),
        &[Some(int_out)],
        &format!("{int_name}_cast_output"),
        vec![int_attr("to", 1)],
    )?;
    let scales_mul = add(
        g,
        ("Mul", ""),
        &format!("{label}_quant_scales_mul"),
        &[Some(scales[0]), Some(scales[1])],
        &format!("{label}_quant_scales_mul:0"),
        Vec::new(),
    )?;
    add(
        g,
        ("Mul", ""),
        &format!("{label}_quant_output_scale_mul"),
        &[Some(cast), Some(scales_mul)],
        output,
        Vec::new(),
    )
}

impl Shared {
    /// Notes that an emitted node uses `domain` (its opset import is added at the end).
    pub(crate) fn require_domain(&mut self, domain: &'static str) {
        self.domains.insert(domain);
    }

    /// The value now standing for `v`.
    pub(crate) fn current(&self, mut v: ValueId) -> ValueId {
        while let Some(&n) = self.replaced.get(&v) {
            v = n;
        }
        v
    }
}

/// What `apply` needs of the node it replaces, read before any edit.
pub(crate) struct Target {
    /// Name for generated nodes: the node's name, else its first output's.
    pub(crate) label: String,
    /// The node's own name ("" when it has none).
    pub(crate) name: String,
    /// Its attributes.
    pub(crate) attrs: Vec<pb::AttributeProto>,
    /// Its inputs.
    pub(crate) inputs: Vec<Option<ValueId>>,
    /// How many outputs it has.
    pub(crate) outputs: usize,
    /// The name of its first output.
    pub(crate) out_name: String,
}

impl Target {
    /// Input `i`, if given.
    pub(crate) fn input(&self, i: usize) -> Option<ValueId> {
        self.inputs.get(i).copied().flatten()
    }
}

/// Reads node `id` for its rewrite.
pub(crate) fn target(g: &Graph, id: NodeId) -> Result<Target> {
    let node = g
        .node(id)
        .ok_or_else(|| Error::Internal("planned node vanished".into()))?;
    let out = output(node, 0)
        .ok_or_else(|| Error::Internal(format!("node `{}` has no output", node.name())))?;
    Ok(Target {
        label: node_label(g, node),
        name: node.name().to_owned(),
        attrs: node.attributes.iter().map(|a| a.proto.clone()).collect(),
        inputs: node.inputs().to_vec(),
        outputs: node.outputs().len(),
        out_name: g.value(out).name().to_owned(),
    })
}

/// Replaces node `old` by one `com.microsoft` node `op` (named `<name>_quant`, unnamed for an
/// unnamed original, as ORT does) with the original attributes minus `drop`.
pub(crate) fn replace_with_contrib(
    g: &mut Graph,
    shared: &mut Shared,
    old: NodeId,
    t: &Target,
    op: &str,
    drop: &[&str],
    inputs: &[Option<ValueId>],
) -> Result<()> {
    let name = (!t.name.is_empty()).then(|| format!("{}_quant", t.name));
    let mut node = Node::new(op, "com.microsoft", name);
    node.attributes = t
        .attrs
        .iter()
        .filter(|a| !drop.contains(&a.name()))
        .cloned()
        .map(onnxq_ir::Attribute::new)
        .collect();
    replace_node_outputs(g, shared, old, node, inputs, t.outputs)?;
    shared.require_domain("com.microsoft");
    Ok(())
}

/// Adds `new` reading `inputs` in place of node `old`: each of `old`'s outputs (the first
/// `outputs`) is taken over by the matching output of `new`, and `old` is removed.
pub(crate) fn replace_node_outputs(
    g: &mut Graph,
    shared: &mut Shared,
    old: NodeId,
    new: Node,
    inputs: &[Option<ValueId>],
    outputs: usize,
) -> Result<()> {
    let olds: Vec<Option<ValueId>> = g
        .node(old)
        .map(|n| n.outputs().to_vec())
        .unwrap_or_default();
    let names: Vec<Option<String>> = olds
        .iter()
        .take(outputs)
        .map(|v| v.map(|v| g.fresh_name(g.value(v).name())))
        .collect();
    let refs: Vec<Option<&str>> = names.iter().map(Option::as_deref).collect();
    let (_, news) = g.add_node(new, inputs, &refs).map_err(Error::edit)?;
    for (o, n) in olds.iter().zip(&news) {
        if let (Some(o), Some(n)) = (o, n) {
            g.substitute(*o, *n).map_err(Error::edit)?;
            shared.replaced.insert(*o, *n);
        }
    }
    g.remove_node(old).map_err(Error::edit)?;
    Ok(())
}

/// Replaces `node`'s output 0 by `new` (which takes its name and uses) and removes the node.
pub(crate) fn replace_node(
    g: &mut Graph,
    shared: &mut Shared,
    node: NodeId,
    new: ValueId,
) -> Result<()> {
    let old = g
        .node(node)
        .and_then(|n| output(n, 0))
        .ok_or_else(|| Error::Internal("node has no output".into()))?;
    g.substitute(old, new).map_err(Error::edit)?;
    shared.replaced.insert(old, new);
    g.remove_node(node).map_err(Error::edit)?;
    Ok(())
}
