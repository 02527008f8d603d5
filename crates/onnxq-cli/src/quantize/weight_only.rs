//! The options of `quantize --mode weight-only`, from the flags and the config (already merged by
//! `options::resolve`) over ONNX Runtime's `MatMulNBitsQuantizer` defaults.

use anyhow::Result;

use crate::args::{Format, QuantizeArgs};
use crate::util::fail;

/// The weight-only options: flags over the config over ORT's `MatMulNBitsQuantizer` defaults.
pub(super) fn weight_only_options(
    a: &QuantizeArgs,
    cfg: &crate::config::Config,
) -> Result<onnxq_quant::WeightOnlyOptions> {
    use crate::args::WeightOnlyAlgo;
    use onnxq_quant::{Algorithm, WeightOnlyFormat};
    let w = &a.weight_only;
    let defaults = onnxq_quant::WeightOnlyOptions::default();
    let algorithm = match w.algo.unwrap_or(WeightOnlyAlgo::Default) {
        WeightOnlyAlgo::Default => Algorithm::Default,
        WeightOnlyAlgo::Rtn => Algorithm::Rtn,
        WeightOnlyAlgo::KQuant => Algorithm::KQuant,
        WeightOnlyAlgo::Hqq => Algorithm::Hqq,
        WeightOnlyAlgo::Gptq => {
            return Err(fail(
                "--algo gptq is not supported yet",
                "use --algo hqq: it needs no calibration data and reconstructs weights better \
                 than the default",
            ));
        }
    };
    let mut gather_axis = defaults.gather_axis;
    for entry in &w.quant_axes {
        let parsed = entry
            .split_once(':')
            .and_then(|(op, axis)| Some((op.trim(), axis.trim().parse::<i64>().ok()?)));
        match parsed {
            Some(("Gather", axis)) => gather_axis = axis,
            // ORT's table has MatMul:0, which is what MatMul weights always use (blocks along K).
            Some(("MatMul", 0)) => {}
            Some(("MatMul", axis)) => {
                return Err(fail(
                    format!(
                        "--quant-axes MatMul:{axis}: MatMul weights are blocked along K (axis 0)"
                    ),
                    "drop the MatMul entry (ORT's tool ignores it too) or give MatMul:0",
                ));
            }
            _ => {
                return Err(fail(
                    format!("--quant-axes `{entry}`: expected OP:AXIS with OP Gather or MatMul"),
                    "e.g. --quant-axes Gather:1 (an embedding table in blocks along each row)",
                ));
            }
        }
    }
    Ok(onnxq_quant::WeightOnlyOptions {
        bits: w.bits.unwrap_or(defaults.bits),
        block_size: w.block_size.unwrap_or(defaults.block_size),
        symmetric: a.calib.symmetric.unwrap_or(false),
        accuracy_level: w.accuracy_level.unwrap_or(0),
        format: match a.format {
            Some(Format::Qdq) => WeightOnlyFormat::Qdq,
            Some(Format::Qoperator) | None => WeightOnlyFormat::QOperator,
        },
        algorithm,
        op_types: a.op_types.clone(),
        include: a.include.clone(),
        exclude: a.exclude.clone(),
        gather_axis,
        nodes: cfg.nodes.clone().unwrap_or_default(),
        lm_head_bits: w.lm_head_bits,
        fold_bias: w.fold_bias,
    })
}
