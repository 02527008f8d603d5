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
    /// Per-node settings (ORT's `customized_weight_config`): the entry naming a node exactly, else
    /// the longest glob matching its name, sets its bits, block size or symmetry, or keeps it float.
    pub nodes: Vec<NodeSettings>,
    /// Folds a constant bias Add after a MatMul into MatMulNBits' bias input (one node fewer;
    /// ORT's tool keeps the Add).
    pub fold_bias: bool,
    /// Bits of the LM head, the main graph's last MatMul (often the one most sensitive to
    /// quantization); `None` quantizes it like the others.
    pub lm_head_bits: Option<u32>,
    /// GPTQ's settings (read with [`Algorithm::Gptq`] only).
    pub gptq: GptqOptions,
}

/// One node's settings, overriding the run's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSettings {
    /// A node name or a glob (`*`, `?`).
    pub pattern: String,
    /// Bits per weight.
    pub bits: Option<u32>,
    /// Rows of K per block.
    pub block_size: Option<usize>,
    /// Symmetric blocks.
    pub symmetric: Option<bool>,
    /// Keep the node float (ORT's `"fp32"`).
    pub float: bool,
}

/// The settings a weight is quantized with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Settings {
    /// Bits per weight.
    pub bits: u32,
    /// Rows of K per block.
    pub block_size: usize,
    /// Symmetric blocks (no zero points).
    pub symmetric: bool,
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
            nodes: Vec::new(),
            fold_bias: false,
            lm_head_bits: None,
            gptq: GptqOptions::default(),
        }
    }
}

/// The op types weight-only quantization can rewrite.
pub const WEIGHT_ONLY_OPS: &[&str] = &["MatMul", "Gather"];

impl WeightOnlyOptions {
    /// The run's own settings.
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            bits: self.bits,
            block_size: self.block_size,
            symmetric: self.symmetric,
        }
    }

    /// A node's settings, `None` to keep it float: its per-node entry (the exact name, else the
    /// longest matching glob), over the LM head's bits for the LM head, over the run's.
    pub(crate) fn settings_for(&self, name: &str, lm_head: bool) -> Option<Settings> {
        let mut s = self.settings();
        if lm_head && let Some(bits) = self.lm_head_bits {
            s.bits = bits;
        }
        match self
            .nodes
            .iter()
            .filter(|n| crate::select::glob_match(&n.pattern, name))
            .max_by_key(|n| (n.pattern == name, n.pattern.len()))
        {
            Some(n) if n.float => None,
            Some(n) => Some(Settings {
                bits: n.bits.unwrap_or(s.bits),
                block_size: n.block_size.unwrap_or(s.block_size),
                symmetric: n.symmetric.unwrap_or(s.symmetric),
            }),
            None => Some(s),
        }
    }

    /// Refuses settings no kernel takes, naming the setting and the values it takes: the run's,
    /// the LM head's and every per-node entry's.
    pub fn validate(&self) -> Result<()> {
        self.validate_settings(self.settings(), "")?;
        if let Some(bits) = self.lm_head_bits {
            let s = Settings {
                bits,
                ..self.settings()
            };
            self.validate_settings(s, " (the LM head's, --lm-head-bits)")?;
        }
        for n in self.nodes.iter().filter(|n| !n.float) {
            let s = Settings {
                bits: n.bits.unwrap_or(self.bits),
                block_size: n.block_size.unwrap_or(self.block_size),
                symmetric: n.symmetric.unwrap_or(self.symmetric),
            };
            self.validate_settings(s, &format!(" (of node entry `{}`)", n.pattern))?;
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
        if self.algorithm == Algorithm::Hqq {
            return bad(
                "HQQ in the QDQ format: HQQ's zero points are float, and DequantizeLinear takes \
                 integer zero points only",
                "leave --format out (MatMulNBits takes float zero points), or use --algo default with --format qdq",
            );
        }
        let node_bits = self
            .nodes
            .iter()
            .filter(|n| !n.float)
            .filter_map(|n| n.bits);
        if self.bits == 2 || self.lm_head_bits == Some(2) || node_bits.into_iter().any(|b| b == 2) {
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
        if self.fold_bias {
            return bad(
                "--fold-bias folds a bias Add into MatMulNBits, and the QDQ format keeps MatMul and its Add",
                "leave --fold-bias out with --format qdq",
            );
        }
        Ok(())
    }

    /// [`WeightOnlyOptions::validate`] for one set of settings; `whose` names where they come from.
    fn validate_settings(&self, s: Settings, whose: &str) -> Result<()> {
        let bad = |message: String, hint: &'static str| {
            Err(Error::Options {
                message: message + whose,
                hint,
            })
        };
        if !matches!(s.bits, 2 | 4 | 8) {
            return bad(
                format!(
                    "{} bits: weight-only quantization takes 2, 4 or 8 bits",
                    s.bits
                ),
                "give --bits 4 (the usual choice), 8 (near-lossless) or 2",
            );
        }
        if s.block_size < 16 || !s.block_size.is_power_of_two() {
            return bad(
                format!(
                    "block size {}: it must be a power of two of at least 16",
                    s.block_size
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
        if s.symmetric && matches!(self.algorithm, Algorithm::KQuant | Algorithm::Hqq) {
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
        if self.algorithm == Algorithm::Hqq && s.bits == 8 {
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
