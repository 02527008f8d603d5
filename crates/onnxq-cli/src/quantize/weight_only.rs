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
        WeightOnlyAlgo::Gptq => Algorithm::Gptq,
    };
    let gptq = gptq_options(a, algorithm == Algorithm::Gptq)?;
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
        gptq,
    })
}

/// GPTQ's settings; given with another algorithm (or `--data` without GPTQ), an error: no option
/// is ignored.
fn gptq_options(a: &QuantizeArgs, gptq: bool) -> Result<onnxq_quant::GptqOptions> {
    let w = &a.weight_only;
    let defaults = onnxq_quant::GptqOptions::default();
    if !gptq {
        let mut given = Vec::new();
        if !a.calib.data.is_empty() {
            given.push("--data");
        }
        if w.percdamp.is_some() {
            given.push("--percdamp");
        }
        if w.act_order {
            given.push("--act-order");
        }
        if w.gptq_memory.is_some() {
            given.push("--gptq-memory");
        }
        if !given.is_empty() {
            return Err(fail(
                format!(
                    "{} {} read by --algo gptq only, and this run's algorithm is another",
                    given.join(", "),
                    if given.len() == 1 { "is" } else { "are" }
                ),
                "give --algo gptq, or drop them (the other algorithms need no calibration data)",
            ));
        }
        return Ok(defaults);
    }
    if a.calib.data.is_empty() {
        return Err(fail(
            "--algo gptq needs calibration data: it weighs each weight's rounding error by its \
             input's statistics",
            "give --data (a .npz with one array per model input, first axis = samples, or a \
             folder of samples), or use --algo hqq, which needs none",
        ));
    }
    let memory = match &w.gptq_memory {
        Some(s) => parse_size(s)?,
        None => defaults.memory,
    };
    Ok(onnxq_quant::GptqOptions {
        percdamp: w.percdamp.unwrap_or(defaults.percdamp),
        act_order: w.act_order,
        memory,
    })
}

/// `--gptq-memory`: bytes, or a number with KiB, MiB, GiB (KB, MB, GB read the same: powers of 2).
fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => Some(0),
        "k" | "kb" | "kib" => Some(10),
        "m" | "mb" | "mib" => Some(20),
        "g" | "gb" | "gib" => Some(30),
        _ => None,
    };
    match (num.parse::<f64>(), shift) {
        (Ok(n), Some(shift)) if n.is_finite() && n > 0.0 => {
            let bytes = n * (1u64 << shift) as f64;
            if bytes < 1.0 || bytes > u64::MAX as f64 / 2.0 {
                Err(fail(
                    format!("--gptq-memory `{s}` is out of range"),
                    "e.g. 2GiB",
                ))
            } else {
                Ok(bytes as u64)
            }
        }
        _ => Err(fail(
            format!("--gptq-memory `{s}` is not a size"),
            "give bytes or a number with KiB, MiB or GiB, e.g. --gptq-memory 2GiB",
        )),
    }
}
