//! Dynamic quantization (ONNX Runtime's `quantize_dynamic`): weights are quantized offline into
//! initializers; activations are quantized at run time by `DynamicQuantizeLinear` (uint8).
//!
//! Three phases, so op quantizers never edit: **plan** (each registered op quantizer reads its node
//! and returns a [`NodePlan`] or a skip reason), **quantize weights** (every distinct weight once,
//! in parallel), **apply** (each op quantizer emits its pattern through the shared helpers here).
//! Subgraph bodies are handled the same way, recursively, when `enable_subgraph` is set.

use std::collections::{BTreeMap, BTreeSet};

use onnxq_ir::proto as pb;
use onnxq_ir::{Graph, Model, Node, NodeId, Sources, ValueId};
use rayon::prelude::*;

use crate::numerics::{F32Data, QuantType, QuantizedTensor, quantize_weight};
use crate::ops::{DYNAMIC_OPS, DynamicOp};
use crate::options::{DynamicOptions, glob_match};
use crate::report::{Entry, Outcome, Report};
use crate::weights::{Source, dims, f32_data, remove_if_unused, resolve};
use crate::{Error, Result};

/// What a node quantizer reads while planning.
pub struct PlanCx<'g> {
    /// The node's graph.
    pub graph: &'g Graph,
    /// Enclosing graphs, parent first (empty for the main graph).
    pub outer: &'g [&'g Graph],
    /// The run's options.
    pub opts: &'g DynamicOptions,
}

/// How one weight input is quantized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WeightKey {
    pub(crate) source: Source,
    /// How the stored tensor and its parameters are laid out.
    pub layout: Layout,
    /// Per-channel axis (of the stored layout), or per tensor.
    pub axis: Option<usize>,
    /// Target type.
    pub qtype: QuantType,
    /// Symmetric range.
    pub symmetric: bool,
    /// Reduced (7-bit) range.
    pub reduce_range: bool,
}

/// The stored layout of a quantized weight and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    /// As the float tensor; per-channel parameters are 1-D.
    AsIs,
    /// 2-D, transposed (Gemm with `transB = 1`).
    Transposed,
    /// Per-channel parameters shaped `[C, 1, …, 1]` with one scalar zero point (0), for ops that
    /// apply the scales after an integer product over NCHW data (ConvInteger).
    ConvChannels,
    /// LSTM `W`/`R` `[D, 4H, K]` stored as `[D, K, 4H]` (DynamicQuantizeLSTM), with one scale per
    /// direction, or per gate row (`[D, 4H]`) when `per_channel`.
    Lstm {
        /// Parameters per gate row instead of per direction.
        per_channel: bool,
    },
}

/// A constant input to quantize offline.
#[derive(Debug, Clone)]
pub struct WeightPlan {
    /// The value the node reads.
    pub value: ValueId,
    /// Base for the quantized initializers' names (`<name>_quantized`, `_scale`, `_zero_point`).
    pub name: String,
    /// Dims of the stored (possibly transposed) tensor.
    pub dims: Vec<usize>,
    /// How to quantize it.
    pub key: WeightKey,
}

/// A node quantizer's decision for one node: data only.
#[derive(Debug, Clone)]
pub struct NodePlan {
    /// The node.
    pub node: NodeId,
    /// Inputs quantized at run time, in the op's order (e.g. MatMul: A, then B when B is dynamic).
    pub dynamic: Vec<ValueId>,
    /// Inputs quantized offline.
    pub weights: Vec<WeightPlan>,
}

impl<'g> PlanCx<'g> {
    /// A weight plan for input `slot` of `node`, if that input is a float32 constant.
    pub fn weight(
        &self,
        node: &Node,
        slot: usize,
        layout: Layout,
        axis: impl FnOnce(usize) -> Option<usize>,
        (qtype, symmetric, reduce_range): (QuantType, bool, bool),
    ) -> Result<Option<WeightPlan>, String> {
        let Some(v) = node.inputs().get(slot).copied().flatten() else {
            return Err(format!("input {slot} is missing"));
        };
        let Some(c) = resolve(self.graph, self.outer, v) else {
            return Ok(None);
        };
        if f32_data(c.tensor).is_none() {
            return Err(format!(
                "weight `{}` is {}, not float32",
                c.name,
                onnxq_ir::DataType(c.tensor.data_type())
            ));
        }
        let mut d = dims(c.tensor);
        match layout {
            Layout::Transposed if d.len() != 2 => {
                return Err(format!(
                    "weight `{}` has rank {}, transposing needs rank 2",
                    c.name,
                    d.len()
                ));
            }
            Layout::Lstm { .. } if d.len() != 3 => {
                return Err(format!(
                    "weight `{}` has rank {}, LSTM weights have rank 3",
                    c.name,
                    d.len()
                ));
            }
            Layout::Transposed | Layout::Lstm { .. } => {
                let r = d.len();
                d.swap(r - 2, r - 1);
            }
            Layout::AsIs | Layout::ConvChannels => {}
        }
        // A shared weight transposed for this node only gets a name of its own.
        let shared = layout == Layout::Transposed && self.graph.value(v).uses().len() > 1;
        let name = if shared {
            format!("{}_transposed", c.name)
        } else {
            c.name.to_owned()
        };
        let axis = axis(d.len());
        Ok(Some(WeightPlan {
            value: v,
            name,
            key: WeightKey {
                source: c.source,
                layout,
                axis,
                qtype,
                symmetric,
                reduce_range,
            },
            dims: d,
        }))
    }

    /// Input `slot` of `node` as a run-time activation: present and not a constant.
    pub fn activation(&self, node: &Node, slot: usize, what: &str) -> Result<ValueId, String> {
        let v = node
            .inputs()
            .get(slot)
            .copied()
            .flatten()
            .ok_or_else(|| format!("input {what} is missing"))?;
        if self.is_constant(v) {
            return Err(format!("input {what} is a constant; fold it instead"));
        }
        Ok(v)
    }

    /// Whether `v` is a constant (so it must not be quantized as a run-time activation).
    pub fn is_constant(&self, v: ValueId) -> bool {
        resolve(self.graph, self.outer, v).is_some()
    }
}

/// Quantizes `model` dynamically in place and reports what happened to every candidate node.
pub fn quantize_dynamic(model: &mut Model, opts: &DynamicOptions) -> Result<Report> {
    let opset = model
        .opset("")
        .ok_or_else(|| Error::Model("the model imports no default-domain opset".into()))?;
    let new_opset = crate::opset::require(model, 11)?;
    check_selection(&model.graph, opts)?;
    let mut report = Report {
        mode: "dynamic".into(),
        nodes: Vec::new(),
        opset: (opset, new_opset),
        notes: Vec::new(),
    };
    let mut domains = BTreeSet::new();
    let sources = model.sources().clone();
    quantize_graph(
        &mut model.graph,
        &[],
        "main",
        opts,
        &mut report,
        &mut domains,
        &sources,
    )?;
    for domain in domains {
        crate::import_domain(model, domain);
    }
    model
        .graph
        .validate()
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(report)
}

/// Fails on an include or exclude entry that matches no node: a typo would otherwise silently
/// quantize everything or nothing.
fn check_selection(g: &Graph, opts: &DynamicOptions) -> Result<()> {
    let mut names = BTreeSet::new();
    collect_names(g, &mut names);
    for (flag, list) in [("--include", &opts.include), ("--exclude", &opts.exclude)] {
        for p in list {
            if !names.iter().any(|n| glob_match(p, n)) {
                return Err(Error::Selection(format!(
                    "{flag} `{p}` matches no node of the model"
                )));
            }
        }
    }
    Ok(())
}

fn collect_names(g: &Graph, names: &mut BTreeSet<String>) {
    for (_, n) in g.nodes() {
        names.insert(n.name().to_owned());
        for sub in n.attributes.iter().flat_map(|a| &a.subgraphs) {
            collect_names(sub, names);
        }
    }
}

/// A node's label in reports and generated names: its name, else its first output's name.
pub(crate) fn node_label(g: &Graph, n: &Node) -> String {
    match n.name() {
        "" => n
            .outputs()
            .iter()
            .flatten()
            .next()
            .map(|v| g.value(*v).name().to_owned())
            .unwrap_or_default(),
        name => name.to_owned(),
    }
}

fn selected(opts: &DynamicOptions, op: &dyn DynamicOp, name: &str) -> Result<(), String> {
    if !opts.op_types.is_empty() && !opts.op_types.iter().any(|t| t == op.op_type()) {
        return Err("op type not selected (--op-types)".into());
    }
    if let Some(p) = opts.exclude.iter().find(|p| glob_match(p, name)) {
        return Err(format!("excluded by `{p}`"));
    }
    if !opts.include.is_empty() && !opts.include.iter().any(|p| glob_match(p, name)) {
        return Err("not matched by --include".into());
    }
    Ok(())
}

fn quantize_graph(
    g: &mut Graph,
    outer: &[&Graph],
    path: &str,
    opts: &DynamicOptions,
    report: &mut Report,
    domains: &mut BTreeSet<&'static str>,
    sources: &Sources,
) -> Result<()> {
    // Subgraphs first, each with this graph (read-only) as its closest enclosing scope.
    let with_subgraphs: Vec<NodeId> = g
        .nodes()
        .filter(|(_, n)| n.attributes.iter().any(|a| !a.subgraphs.is_empty()))
        .map(|(id, _)| id)
        .collect();
    for id in with_subgraphs {
        let label = g.node(id).map(|n| node_label(g, n)).unwrap_or_default();
        let mut attrs = std::mem::take(
            &mut g
                .node_mut(id)
                .ok_or_else(|| Error::Internal("node vanished".into()))?
                .attributes,
        );
        let mut scope = vec![&*g];
        scope.extend_from_slice(outer);
        for a in &mut attrs {
            let attr_name = a.name().to_owned();
            for (i, sub) in a.subgraphs.iter_mut().enumerate() {
                let sub_path = format!(
                    "{path}/{label}.{attr_name}{}",
                    if i > 0 {
                        format!("[{i}]")
                    } else {
                        String::new()
                    }
                );
                if opts.enable_subgraph {
                    quantize_graph(sub, &scope, &sub_path, opts, report, domains, sources)?;
                } else {
                    report_subgraph_skips(sub, &sub_path, report);
                }
            }
        }
        if let Some(n) = g.node_mut(id) {
            n.attributes = attrs;
        }
    }

    // Plan.
    let mut plans: Vec<(&'static dyn DynamicOp, NodePlan, usize)> = Vec::new();
    {
        let cx = PlanCx {
            graph: g,
            outer,
            opts,
        };
        for (id, node) in g.nodes() {
            let Some(op) = DYNAMIC_OPS
                .iter()
                .find(|op| op.op_type() == node.op_type() && node.domain() == op.domain())
            else {
                continue;
            };
            let label = node_label(g, node);
            let outcome = selected(opts, *op, node.name()).and_then(|()| op.plan(&cx, id));
            let entry_index = report.nodes.len();
            report.nodes.push(Entry {
                graph: path.to_owned(),
                node: label,
                op_type: node.op_type().to_owned(),
                outcome: Outcome::Skipped {
                    reason: String::new(),
                },
                weight_sqnr_db: None,
            });
            match outcome {
                Ok(plan) => plans.push((*op, plan, entry_index)),
                Err(reason) => report.nodes[entry_index].outcome = Outcome::Skipped { reason },
            }
        }
    }

    // Quantize each distinct weight once, in parallel.
    let keys: BTreeMap<WeightKey, ValueId> = plans
        .iter()
        .flat_map(|(_, p, _)| p.weights.iter().map(|w| (w.key.clone(), w.value)))
        .collect();
    let quantized: BTreeMap<WeightKey, QuantizedTensor> = keys
        .into_par_iter()
        .map(|(key, v)| {
            let c = resolve(g, outer, v)
                .ok_or_else(|| Error::Internal("planned weight is not constant".into()))?;
            let data = f32_data(c.tensor)
                .ok_or_else(|| Error::Internal("planned weight is not float32".into()))?;
            let d = dims(c.tensor);
            let q = match key.layout {
                Layout::Transposed => {
                    let t = transpose2(data, d[0], d[1]);
                    quantize_weight(
                        F32Data::Slice(&t),
                        &[d[1], d[0]],
                        key.axis,
                        key.qtype,
                        key.symmetric,
                        key.reduce_range,
                    )
                }
                Layout::Lstm { per_channel } => {
                    // Quantize rows (per gate row) or whole directions, then store each direction's
                    // [4H, K] block transposed to [K, 4H].
                    let (dirs, rows, cols) = (d[0], d[1], d[2]);
                    let flat = if per_channel {
                        [dirs * rows, cols]
                    } else {
                        [dirs, rows * cols]
                    };
                    let mut q = quantize_weight(
                        data,
                        &flat,
                        Some(0),
                        key.qtype,
                        key.symmetric,
                        key.reduce_range,
                    );
                    q.data = q
                        .data
                        .chunks(rows * cols)
                        .flat_map(|block| transpose_bytes(block, rows, cols))
                        .collect();
                    q
                }
                Layout::AsIs | Layout::ConvChannels => quantize_weight(
                    data,
                    &d,
                    key.axis,
                    key.qtype,
                    key.symmetric,
                    key.reduce_range,
                ),
            };
            // The float weight has been read once and is not needed again: drop its pages.
            if let Some(raw) = &c.tensor.raw_data {
                sources.release(raw);
            }
            Ok((key, q))
        })
        .collect::<Result<_>>()?;

    // Apply.
    let sqnr: BTreeMap<WeightKey, Option<f64>> = quantized
        .iter()
        .map(|(k, q)| (k.clone(), q.sqnr_db))
        .collect();
    let mut shared = Shared {
        domains: BTreeSet::new(),
        replaced: BTreeMap::new(),
        dynamic: BTreeMap::new(),
        weights: BTreeMap::new(),
        quantized,
    };
    let mut consumed: BTreeSet<ValueId> = BTreeSet::new();
    for (op, plan, entry_index) in &plans {
        let pattern = op.apply(g, plan, &mut shared)?;
        consumed.extend(plan.weights.iter().map(|w| w.value));
        let entry = &mut report.nodes[*entry_index];
        entry.outcome = Outcome::Quantized { pattern };
        entry.weight_sqnr_db = plan
            .weights
            .iter()
            .filter_map(|w| sqnr.get(&w.key).copied().flatten())
            .reduce(f64::min);
    }
    for v in consumed {
        remove_if_unused(g, v);
    }
    domains.extend(shared.domains);
    Ok(())
}

/// Records the candidates inside a subgraph that is left alone (ORT silently skips them).
fn report_subgraph_skips(g: &Graph, path: &str, report: &mut Report) {
    for (_, n) in g.nodes() {
        if DYNAMIC_OPS
            .iter()
            .any(|op| op.op_type() == n.op_type() && n.domain() == op.domain())
        {
            report.nodes.push(Entry {
                graph: path.to_owned(),
                node: node_label(g, n),
                op_type: n.op_type().to_owned(),
                outcome: Outcome::Skipped {
                    reason: "inside a subgraph; pass --enable-subgraph to quantize it".into(),
                },
                weight_sqnr_db: None,
            });
        }
        for (i, sub) in n
            .attributes
            .iter()
            .flat_map(|a| a.subgraphs.iter().map(move |s| (a.name(), s)))
            .enumerate()
        {
            report_subgraph_skips(
                sub.1,
                &format!("{path}/{}.{}[{i}]", node_label(g, n), sub.0),
                report,
            );
        }
    }
}

fn transpose_bytes(data: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    let mut out = vec![0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

fn transpose2(data: F32Data<'_>, rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data.get(r * cols + c);
        }
    }
    out
}

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

/// A fresh name for a node output or initializer.
fn fresh(g: &Graph, base: &str) -> String {
    g.fresh_name(base)
}

/// Adds a node and returns its single output.
pub(crate) fn add(
    g: &mut Graph,
    op: &str,
    domain: &str,
    name: &str,
    inputs: &[Option<ValueId>],
    output: &str,
    attrs: Vec<pb::AttributeProto>,
) -> Result<ValueId> {
    let mut node = Node::new(op, domain, Some(name.to_owned()));
    node.attributes = attrs.into_iter().map(onnxq_ir::Attribute::new).collect();
    let out = fresh(g, output);
    let (_, outs) = g
        .add_node(node, inputs, &[Some(&out)])
        .map_err(|e| Error::Internal(e.to_string()))?;
    outs[0].ok_or_else(|| Error::Internal("node without output".into()))
}

/// An INT attribute.
pub(crate) fn int_attr(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        r#type: Some(2),
        i: Some(v),
        ..Default::default()
    }
}

impl Shared {
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
        .map(|n| fresh(g, &n));
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
            .map_err(|e| Error::Internal(e.to_string()))?;
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
        let n = q.params.len();
        let param_dims: Vec<i64> = match (w.key.layout, w.key.axis) {
            (Layout::Lstm { per_channel: true }, _) => vec![w.dims[0] as i64, w.dims[2] as i64],
            (Layout::Lstm { per_channel: false }, _) => vec![n as i64],
            (_, None) => Vec::new(),
            (Layout::ConvChannels, Some(_)) => {
                let mut d = vec![1i64; w.dims.len() - 1];
                d[0] = n as i64;
                d
            }
            (_, Some(_)) => vec![n as i64],
        };
        let data = pb::TensorProto {
            dims: w.dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(qt.onnx_type()),
            raw_data: Some(q.data.into()),
            ..Default::default()
        };
        let scale = pb::TensorProto {
            dims: param_dims.clone(),
            data_type: Some(1),
            raw_data: Some(
                q.params
                    .iter()
                    .flat_map(|p| p.scale.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            ..Default::default()
        };
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
        let zero_point = pb::TensorProto {
            dims: zp_dims,
            data_type: Some(qt.onnx_type()),
            raw_data: Some(crate::numerics::to_storage(&zps, qt).into()),
            ..Default::default()
        };
        let mut made = Vec::with_capacity(3);
        for (suffix, t) in [
            ("_quantized", data),
            ("_scale", scale),
            ("_zero_point", zero_point),
        ] {
            let name = fresh(g, &format!("{}{suffix}", w.name));
            made.push(
                g.add_initializer(&name, t)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            );
        }
        let ids = [made[0], made[1], made[2]];
        self.weights.insert(w.key.clone(), ids);
        Ok(ids)
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
        "Cast",
        "",
        &format!("{int_name}_cast"),
        &[Some(int_out)],
        &format!("{int_name}_cast_output"),
        vec![int_attr("to", 1)],
    )?;
    let scales_mul = add(
        g,
        "Mul",
        "",
        &format!("{label}_quant_scales_mul"),
        &[Some(scales[0]), Some(scales[1])],
        &format!("{label}_quant_scales_mul:0"),
        Vec::new(),
    )?;
    add(
        g,
        "Mul",
        "",
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
    let out = node
        .outputs()
        .first()
        .copied()
        .flatten()
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
        .map(|v| v.map(|v| fresh(g, g.value(v).name())))
        .collect();
    let refs: Vec<Option<&str>> = names.iter().map(Option::as_deref).collect();
    let (_, news) = g
        .add_node(new, inputs, &refs)
        .map_err(|e| Error::Internal(e.to_string()))?;
    for (o, n) in olds.iter().zip(&news) {
        if let (Some(o), Some(n)) = (o, n) {
            g.substitute(*o, *n)
                .map_err(|e| Error::Internal(e.to_string()))?;
            shared.replaced.insert(*o, *n);
        }
    }
    g.remove_node(old)
        .map_err(|e| Error::Internal(e.to_string()))?;
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
        .and_then(|n| n.outputs().first().copied().flatten())
        .ok_or_else(|| Error::Internal("node has no output".into()))?;
    g.substitute(old, new)
        .map_err(|e| Error::Internal(e.to_string()))?;
    shared.replaced.insert(old, new);
    g.remove_node(node)
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(())
}
