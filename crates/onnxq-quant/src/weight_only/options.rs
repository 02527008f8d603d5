//! Options of weight-only block quantization, with the defaults of ONNX Runtime's
//! `MatMulNBitsQuantizer` class (4 bits, block 128, asymmetric, QOperator, DEFAULT).

use serde::Serialize;

use crate::error::{Error, Result};

/// How the quantized weight is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightOnlyFormat {
    /// `com.microsoft.MatMulNBits` (ORT's QOperator format).
    QOperator,
    /// A blocked `DequantizeLinear` feeding the original op (opset 21).
    Qdq,
}

/// The algorithm choosing each block's codes and parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// ORT's C++ block quantizer (MLAS): min/max per block, round half away from zero.
    Default,
    /// Round to nearest over each block's own min/max in float64 (ORT's "RTN").
    Rtn,
    /// llama.cpp's k-quant search of each block's scale and minimum (ORT's "k_quant"; always
    /// asymmetric).
    KQuant,
    /// Half-quadratic quantization: proximal optimisation of each block's zero point (float zero
    /// points; asymmetric).
    Hqq,
    /// GPTQ: each row's rounding error pushed onto the rows not yet quantized, weighted by the
    /// inverse Hessian of the MatMul's input over calibration data (needs a `HessianSource`).
    Gptq,
}

/// GPTQ's settings (ORT's `GPTQWeightOnlyQuantConfig` names in the comments).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GptqOptions {
    /// Damping as a fraction of the mean of the Hessian's diagonal (`percdamp`).
    pub percdamp: f64,
    /// Rows in order of decreasing Hessian diagonal, with static groups (`actorder`).
    pub act_order: bool,
    /// Bytes of Hessians (8·K² each) accumulated per pass over the calibration data; more
    /// Hessians take more passes. Not in the stamp: the model does not depend on it.
    #[serde(skip)]
    pub memory: u64,
}

impl Default for GptqOptions {
    fn default() -> Self {
        GptqOptions {
            percdamp: 0.01,
            act_order: false,
            memory: 2 << 30,
        }
    }
}

/// Options of `quantize --mode weight-only`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightOnlyOptions {
    /// Bits per weight: 2, 4 or 8.
    pub bits: u32,
    /// Rows of K per block: a power of two, at least 16.
    pub block_size: usize,
    /// Symmetric blocks (no zero points).
    pub symmetric: bool,
    /// MatMulNBits' `accuracy_level` (0-4; written only when not 0, as ORT does).
    pub accuracy_level: u8,
    /// Output format.
    pub format: WeightOnlyFormat,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Op types to quantize; empty means ORT's default, MatMul.
    pub op_types: Vec<String>,
    /// Node names or globs to quantize; empty means every node of the selected op types.
    pub include: Vec<String>,
    /// Node names or globs never to quantize.
    pub exclude: Vec<String>,
    /// The axis a Gather table is blocked along (ORT's `quant_axes["Gather"]`, default 1; negative
    /// counts from the end).
    pub gather_axis: i64,
    /// GPTQ's settings (read with [`Algorithm::Gptq`] only).
    pub gptq: GptqOptions,
}

impl Default for WeightOnlyOptions {
    fn default() -> Self {
        WeightOnlyOptions {
            bits: 4,
            block_size: 128,
            symmetric: false,
            accuracy_level: 0,
            format: WeightOnlyFormat::QOperator,
            algorithm: Algorithm::Default,
            op_types: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            gather_axis: 1,
            gptq: GptqOptions::default(),
        }
    }
}

/// The op types weight-only quantization can rewrite.
pub const WEIGHT_ONLY_OPS: &[&str] = &["MatMul", "Gather"];

impl WeightOnlyOptions {
    /// Refuses settings no kernel takes, naming the setting and the values it takes.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String, hint: &'static str| Err(Error::Options { message, hint });
        if !matches!(self.bits, 2 | 4 | 8) {
            return bad(
                format!(
                    "{} bits: weight-only quantization takes 2, 4 or 8 bits",
                    self.bits
                ),
                "give --bits 4 (the usual choice), 8 (near-lossless) or 2",
            );
        }
        if self.block_size < 16 || !self.block_size.is_power_of_two() {
            return bad(
                format!(
                    "block size {}: it must be a power of two of at least 16",
                    self.block_size
                ),
                "give --block-size 32 (more accurate) or 128 (smaller, ORT's default); 16, 64 and 256 work too",
            );
        }
        if self.accuracy_level > 4 {
            return bad(
                format!(
                    "accuracy level {}: MatMulNBits takes 0 to 4",
                    self.accuracy_level
                ),
                "give --accuracy-level 4 (int8 compute, fastest on CPU) or 0 (unset)",
            );
        }
        if self.symmetric && matches!(self.algorithm, Algorithm::KQuant | Algorithm::Hqq) {
            let algo = if self.algorithm == Algorithm::Hqq {
                "HQQ"
            } else {
                "k-quant"
            };
            return bad(
                format!(
                    "{algo} is asymmetric by construction, and symmetric blocks were asked for"
                ),
                "leave --symmetric out, or use --algo default or rtn for symmetric blocks",
            );
        }
        if self.algorithm == Algorithm::Hqq && self.bits == 8 {
            // Measured: MatMulNBits fails at run time, "Only 2b and 4b quantization is supported
            // for unpacked compute for now".
            return bad(
                "HQQ at 8 bits: ONNX Runtime 1.31 runs MatMulNBits with float zero points (HQQ's) at \
                 2 and 4 bits only"
                    .into(),
                "use --bits 4 with HQQ, or --algo default at 8 bits (near-lossless already)",
            );
        }
        if self.algorithm == Algorithm::Gptq {
            self.validate_gptq()?;
        }
        if self.format == WeightOnlyFormat::Qdq {
            return bad(
                "the QDQ format of weight-only quantization is not supported yet".into(),
                "leave --format out to write MatMulNBits (the QOperator format)",
            );
        }
        Ok(())
    }

    fn validate_gptq(&self) -> Result<()> {
        let bad = |message: String, hint: &'static str| Err(Error::Options { message, hint });
        let g = &self.gptq;
        if !(g.percdamp.is_finite() && g.percdamp > 0.0) {
            return bad(
                format!("GPTQ damping {}: it must be a positive number", g.percdamp),
                "give --percdamp 0.01 (ORT's default) or a little more (0.1) for noisy data",
            );
        }
        if self.op_types.iter().any(|t| t != "MatMul") {
            return bad(
                "GPTQ quantizes MatMul weights only, and --op-types names another op".into(),
                "give --op-types MatMul (or leave it out), or another --algo for Gather tables",
            );
        }
        Ok(())
    }

    /// The op types selected: the given ones, or MatMul.
    pub(crate) fn op_types(&self) -> Vec<String> {
        if self.op_types.is_empty() {
            vec!["MatMul".to_owned()]
        } else {
            self.op_types.clone()
        }
    }
}
