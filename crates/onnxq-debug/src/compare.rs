//! The comparison driver, as named stages: [`prepare`] checks that the two models belong
//! together and builds the augmented copies the engines run (every node output an output);
//! [`compare`] runs the samples, then matches, measures and ranks into a [`Report`].

use std::collections::BTreeMap;

use onnxq_calib::data::Samples;
use onnxq_engine::Executor;
use onnxq_ir::Model;

use crate::activations::{self, Counters, Item, Measured, Plan};
use crate::error::Error;
use crate::order::Order;
use crate::rank;
use crate::report::{ActivationEntry, OutputEntry, Quantization, Report, SCHEMA};
use crate::weights::{Matched, match_weights};

/// Settings of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// A drop larger than this (dB) marks where error starts.
    pub threshold_db: f64,
    /// Worst tensors listed (and exclusions tried).
    pub top: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold_db: 6.0,
            top: 10,
        }
    }
}

/// Two models checked to belong together, with their augmented copies.
pub struct Prepared<'m> {
    /// The float model.
    pub float: &'m Model,
    /// The quantized model.
    pub quant: &'m Model,
    /// The float model with every node output an output: run this one.
    pub float_augmented: Model,
    /// The quantized model likewise.
    pub quant_augmented: Model,
    order: Order,
    weights: Matched,
}

/// The metadata key onnxq records its settings under.
pub const SETTINGS_KEY: &str = "onnxq.settings";

/// Checks that `quant` is a quantization of `float` (same inputs, a common output, quantized
/// weights that match) and builds the copies to run.
pub fn prepare<'m>(float: &'m Model, quant: &'m Model) -> Result<Prepared<'m>, Error> {
    let spec = |m: &Model| -> BTreeMap<String, i32> {
        onnxq_calib::input_specs(m)
            .into_iter()
            .map(|s| (s.name, s.elem_type))
            .collect()
    };
    let (fi, qi) = (spec(float), spec(quant));
    if fi != qi {
        return Err(Error::mismatch(
            format!(
                "the models' inputs differ: the float model takes {}, the quantized one {}",
                list(&fi),
                list(&qi)
            ),
            "compare a float model with a quantization of that model (same input names and types)",
        ));
    }
    let order = Order::of(&float.graph)?;
    let weights = match_weights(&float.graph, &quant.graph, &order);
    if weights.misfits > weights.entries.len() {
        return Err(Error::mismatch(
            format!(
                "the quantized model was not made from this float model: {} of its quantized \
                 weights have a float weight of the same name but another size ({})",
                weights.misfits,
                weights.unmatched.first().map_or("", String::as_str)
            ),
            "give the float model the quantized model was made from",
        ));
    }
    let (fw, qw) = activations::wanted(&float.graph, &quant.graph);
    let float_augmented = onnxq_calib::augmented(float, &fw)?;
    let quant_augmented = onnxq_calib::augmented(quant, &qw)?;
    Ok(Prepared {
        float,
        quant,
        float_augmented,
        quant_augmented,
        order,
        weights,
    })
}

fn list(m: &BTreeMap<String, i32>) -> String {
    let names: Vec<String> = m
        .iter()
        .map(|(n, t)| format!("`{n}` ({})", onnxq_ir::DataType(*t)))
        .collect();
    if names.is_empty() {
        "no inputs".into()
    } else {
        names.join(", ")
    }
}

/// Runs `samples` through sessions of the two augmented models and builds the report (no
/// suggestions: those need a quantizer, see `suggest`). Returns the loop's counters too.
pub fn compare(
    p: &Prepared<'_>,
    float: &mut dyn Executor,
    quant: &mut dyn Executor,
    samples: &Samples,
    opts: Options,
    progress: impl FnMut(usize),
) -> Result<(Report, Counters), Error> {
    let first = samples.first()?;
    let types = |e: &mut dyn Executor| -> Result<BTreeMap<String, i32>, Error> {
        let mut t: BTreeMap<String, i32> = e.output_types(&first)?.into_iter().collect();
        for (name, v) in &first {
            let code = if matches!(v.data, onnxq_engine::Data::F32(_)) {
                1
            } else {
                0
            };
            t.insert(name.clone(), code);
        }
        Ok(t)
    };
    let (ft, qt) = (types(float)?, types(quant)?);
    let plan = activations::plan(p.float, p.quant, &p.order, &ft, &qt);
    if plan.outputs.is_empty() {
        return Err(Error::mismatch(
            "the models have no output name in common",
            "compare a float model with a quantization of that model (same output names)",
        ));
    }
    // Graph inputs and outputs share their names whatever the models: they prove nothing.
    let inner = plan
        .items
        .iter()
        .filter(|i| i.producer.is_some() && !plan.outputs.contains(&i.name))
        .count();
    if inner == 0 && p.weights.entries.is_empty() {
        return Err(Error::mismatch(
            "no tensor of the quantized model matches one of the float model: no quantized \
             weight has a float original and no float activation has a counterpart",
            "give the float model the quantized model was made from",
        ));
    }
    let measured = activations::measure(&plan, float, quant, samples, progress)?;
    let report = build(p, &plan, &measured, samples.len(), float.name(), opts);
    Ok((report, measured.counters))
}

/// Assembles the report from the plan and the sums.
fn build(
    p: &Prepared<'_>,
    plan: &Plan,
    m: &Measured,
    samples: usize,
    engine: String,
    opts: Options,
) -> Report {
    let mut acts: Vec<ActivationEntry> = Vec::new();
    let mut inputs = Vec::new();
    for (i, item) in plan.items.iter().enumerate() {
        let (qdq, cross) = (m.qdq[i], m.cross[i]);
        if qdq.is_none() && cross.is_none() {
            continue;
        }
        acts.push(entry(item, qdq, cross));
        inputs.push(item.inputs.clone());
    }
    rank::set_drops(&mut acts, &inputs);
    let outputs = plan
        .outputs
        .iter()
        .zip(&m.outputs)
        .map(|(name, (s, top))| OutputEntry {
            name: name.clone(),
            sqnr_db: s.sqnr_db(),
            cosine: s.cosine(),
            max_abs_err: s.max_abs,
            mean_abs_err: s.mean_abs(),
            top1_agreement: top.agreement(),
        })
        .collect();
    let ranking = rank::rank(&acts, &p.weights.entries, opts.threshold_db, opts.top);
    let mut notes: Vec<String> = p.weights.unmatched.clone();
    notes.extend(m.dropped.iter().cloned());
    Report {
        schema: SCHEMA.into(),
        engine,
        samples,
        format: format_of(p.quant),
        weights: p.weights.entries.clone(),
        activations: acts,
        outputs,
        ranking,
        notes,
        quantization: settings(p.quant).map(|settings| Quantization {
            settings,
            nodes: Vec::new(),
        }),
        peak_held_bytes: m.counters.peak_held_bytes,
        ..Default::default()
    }
}

fn entry(
    item: &Item,
    qdq: Option<crate::stats::Sums>,
    cross: Option<crate::stats::Sums>,
) -> ActivationEntry {
    ActivationEntry {
        name: item.name.clone(),
        index: item.index,
        producer: item.producer.as_ref().map(|(n, _)| n.clone()),
        op: item.producer.as_ref().map(|(_, o)| o.clone()),
        qdq_sqnr_db: qdq.map(|s| s.sqnr_db()),
        xmodel_sqnr_db: cross.map(|s| s.sqnr_db()),
        xmodel_cosine: cross.map(|s| s.cosine()),
        xmodel_max_abs_err: cross.map(|s| s.max_abs),
        drop_db: None,
        quant_tensor: item.counterpart.as_ref().map(|c| c.tensor().to_owned()),
    }
}

/// The settings onnxq recorded in `m`, if it made it.
pub fn settings(m: &Model) -> Option<serde_json::Value> {
    m.proto
        .metadata_props
        .iter()
        .find(|e| e.key() == SETTINGS_KEY)
        .and_then(|e| serde_json::from_str(e.value()).ok())
}

/// What the quantized model holds, from its ops: "qdq", "qoperator", "dynamic", "weight-only",
/// joined by "+" when mixed, "float" when none.
pub fn format_of(m: &Model) -> String {
    let (mut q, mut dq, mut qop, mut dynamic, mut wo) = (false, false, false, false, false);
    for (_, n) in m.graph.nodes() {
        let blocked = n
            .attribute("block_size")
            .is_some_and(|a| a.proto.i.unwrap_or(0) > 0);
        match n.op_type() {
            "MatMulNBits" | "GatherBlockQuantized" => wo = true,
            "DequantizeLinear" if blocked => wo = true,
            "QuantizeLinear" => q = true,
            "DequantizeLinear" => dq = true,
            "MatMulInteger"
            | "ConvInteger"
            | "DynamicQuantizeLinear"
            | "DynamicQuantizeMatMul"
            | "MatMulIntegerToFloat" => dynamic = true,
            op if op.starts_with("QLinear") || op == "QGemm" || op == "QAttention" => qop = true,
            _ => {}
        }
    }
    // DequantizeLinear on constants alone (dynamic mode's Gather, weight-only blocks) is part of
    // those formats; it is QDQ when activations are quantized, or when nothing else is there.
    let qdq = q || (dq && !dynamic && !wo && !qop);
    let mut parts = Vec::new();
    if qop {
        parts.push("qoperator");
    } else if qdq {
        parts.push("qdq");
    }
    if dynamic {
        parts.push("dynamic");
    }
    if wo {
        parts.push("weight-only");
    }
    if parts.is_empty() {
        "float".into()
    } else {
        parts.join("+")
    }
}
