//! `preprocess` (issue #13): what ORT's `quant_pre_process` does before quantization, in one pass
//! over the IR that works on models of any size. Stages, in order:
//! 1. `upgrade`: to `opset` when asked, through the same converter as the weight-only QDQ format;
//! 2. `clean up` (unless `skip_optimization`): the rules of `rules.rs`, each named in the report;
//! 3. `infer` (unless `skip_shape_inference`): `onnxq-infer`'s types and shapes written as
//!    `value_info` for every node output that has none, symbolic dims by name; what could not be
//!    inferred, and declared shapes inference contradicts, go to the report (never an error);
//! 4. `stamp`: metadata `onnx.quant.pre_process = onnxruntime.quant`, which ORT's quantizer checks.

mod bodies;
mod conv_affine;
mod conv_bn;
mod fold;
mod gemm;
mod rules;

use onnxq_ir::proto as pb;
use onnxq_ir::{Def, Model};
use serde::Serialize;

use crate::error::{Error, Result};

/// Pre-processing settings (ORT's `quant_pre_process` names in the CLI's config).
#[derive(Debug, Clone, Default)]
pub struct PreprocessOptions {
    /// Skip the graph clean-ups (`skip_optimization`).
    pub skip_optimization: bool,
    /// Skip type and shape inference (`skip_symbolic_shape` and `skip_onnx_shape` together).
    pub skip_shape_inference: bool,
    /// Upgrade the default-domain opset to this version first.
    pub opset: Option<i64>,
}

/// What pre-processing did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PreprocessReport {
    /// `(from, to)` when the opset was upgraded.
    pub upgraded: Option<(i64, i64)>,
    /// Whose graph optimization ran: `onnxq` (the rules below), `none`, or what the caller ran
    /// instead (`onnxruntime-basic`: the CLI's `--ort-optimizer`).
    pub optimizer: String,
    /// Each clean-up rule and how many places it changed, in the order they ran.
    pub rules: Vec<(String, usize)>,
    /// Node outputs with a known type and rank after inference, and node outputs in all.
    pub shapes: Option<(usize, usize)>,
    /// `value_info` entries written.
    pub value_info_written: usize,
    /// Nodes whose outputs could not be inferred: `(node, op, why)`.
    pub not_inferred: Vec<(String, String, String)>,
    /// Declared shapes inference contradicts (kept): `(value, declared, inferred)`.
    pub conflicts: Vec<(String, String, String)>,
}

/// The metadata key ORT's quantizer looks for.
pub const PRE_PROCESS_KEY: &str = "onnx.quant.pre_process";

/// Pre-processes `model` in place.
pub fn preprocess(model: &mut Model, opts: &PreprocessOptions) -> Result<PreprocessReport> {
    let mut report = PreprocessReport::default();
    if let Some(target) = opts.opset {
        let up = crate::upgrade(model, target)?;
        if up.opset.0 != up.opset.1 {
            report.upgraded = Some(up.opset);
        }
    }
    report.optimizer = if opts.skip_optimization {
        "none"
    } else {
        "onnxq"
    }
    .into();
    if !opts.skip_optimization {
        for (name, rule) in rules::RULES {
            let n = rule(model).map_err(Error::edit)?;
            report.rules.push(((*name).to_owned(), n));
        }
    }
    if !opts.skip_shape_inference {
        write_shapes(model, &mut report)?;
    }
    stamp(model);
    Ok(report)
}

/// Infers and writes `value_info` for the node outputs of the main graph that have no declared
/// type.
fn write_shapes(model: &mut Model, report: &mut PreprocessReport) -> Result<()> {
    let inf = onnxq_infer::infer(model).map_err(|e| Error::Model(e.to_string()))?;
    report.shapes = Some(inf.coverage(model));
    report.not_inferred = (inf.unknown.iter())
        .map(|u| (u.node.clone(), u.op.clone(), u.reason.clone()))
        .collect();
    report.conflicts = (inf.conflicts.iter())
        .map(|c| (c.value.clone(), c.declared.clone(), c.inferred.clone()))
        .collect();
    let g = &mut model.graph;
    let todo: Vec<(onnxq_ir::ValueId, pb::TypeProto)> = g
        .values()
        .filter(|(_, v)| matches!(v.def(), Def::Node { .. }))
        .filter(|(id, _)| g.declared_type(*id).is_none())
        .filter_map(|(id, v)| {
            let f = inf.facts.get(v.name())?;
            Some((id, onnxq_infer::to_type(f).filter(|_| f.complete())?))
        })
        .collect();
    for (v, t) in todo {
        g.add_value_info(
            v,
            pb::ValueInfoProto {
                r#type: Some(t),
                ..Default::default()
            },
        )
        .map_err(Error::edit)?;
        report.value_info_written += 1;
    }
    Ok(())
}

/// Sets `onnx.quant.pre_process = onnxruntime.quant` (ORT's quantizer warns without it).
fn stamp(model: &mut Model) {
    let props = &mut model.proto.metadata_props;
    props.retain(|p| p.key() != PRE_PROCESS_KEY);
    props.push(pb::StringStringEntryProto {
        key: Some(PRE_PROCESS_KEY.into()),
        value: Some("onnxruntime.quant".into()),
    });
}
