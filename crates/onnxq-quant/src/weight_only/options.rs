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
        if self.format == WeightOnlyFormat::Qdq {
            self.validate_qdq()?;
        }
        Ok(())
    }

    /// What the QDQ format (a blocked DequantizeLinear, opset 21) cannot write.
    fn validate_qdq(&self) -> Result<()> {
        let bad = |message: &str, hint: &'static str| {
            Err(Error::Options {
                message: message.to_owned(),
                hint,
            })
        };
        match self.algorithm {
            Algorithm::Default | Algorithm::Rtn | Algorithm::KQuant => {}
            Algorithm::Hqq => {
                return bad(
                    "HQQ in the QDQ format: HQQ's zero points are float, and DequantizeLinear takes \
                 integer zero points only",
                    "leave --format out (MatMulNBits takes float zero points), or use --algo default with --format qdq",
                );
            }
        }
        if self.bits == 2 {
            // Measured: ONNX Runtime 1.31 runs INT2/UINT2 DequantizeLinear, but those types need
            // opset 25 (IR 11), and onnxq's opset converter writes up to opset 21.
            return bad(
                "2 bits in the QDQ format: INT2/UINT2 DequantizeLinear needs opset 25, and onnxq \
                 converts models up to opset 21",
                "use --bits 4 or 8 with --format qdq, or leave --format out for 2-bit MatMulNBits",
            );
        }
        if self.accuracy_level > 0 {
            return bad(
                "--accuracy-level is a MatMulNBits attribute, and the QDQ format writes none",
                "leave --accuracy-level out; ONNX Runtime's session option \
                 `session.qdq_matmulnbits_accuracy_level` (default 4) sets it when it fuses the QDQ pattern",
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
