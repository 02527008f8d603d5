//! onnxq's quantization: exact numerics, the op-quantizer registries, and the passes that plan and
//! apply a quantization to a model: `dynamic/` (ONNX Runtime's `quantize_dynamic`), `qdq/` (its
//! `quantize_static` in the QDQ format), `qoperator/` (the QOperator format, lowered from QDQ) and
//! `weight_only/` (its `MatMulNBitsQuantizer`: block-wise 2/4/8-bit weights).
//!
//! Op quantizers only *plan* (they read the graph and return data); the apply step of each pass
//! edits the graph. A node that cannot be quantized is a report entry, never an error.
//!
//! This file only declares the modules and re-exports the public API.

pub mod bias_correction;
mod dtypes;
pub mod dynamic;
mod edit;
pub mod equalize;
mod error;
mod hessians;
pub mod numerics;
mod opset;
pub mod options;
pub mod preprocess;
pub mod qdq;
pub mod qoperator;
pub mod report;
mod rescale;
mod select;
pub mod smooth;
mod subgraphs;
pub mod upgrade;
pub mod weight_only;
mod weights;

pub use bias_correction::{
    BiasProbes, BiasTarget, Probe, bias_correction_targets, bias_probes, correct_biases,
};
pub use dynamic::quantize_dynamic;
pub use equalize::{EqualizeOptions, absorb_biases, apply_equalization, plan_equalization};
pub use error::{Error, Result};
pub use options::{DynamicOptions, StaticOptions};
pub use preprocess::{PreprocessOptions, PreprocessReport, preprocess};
pub use qdq::rounding::{
    ConvGeometry, LayerHessian, Layout, RoundingRequest, WeightRounding, rounding_requests,
};
pub use qdq::{overrides, quantize_qdq};
pub use qoperator::lower_qoperator;
pub use report::{BiasCorrectionReport, Decision, EqualizeReport, Report, SearchReport};
pub use smooth::{SmoothOptions, SmoothReport, apply_smoothing, plan_smoothing};
pub use upgrade::{UpgradeReport, upgrade};
pub use weight_only::options::{
    Algorithm, GptqOptions, NodeSettings, Settings, WeightOnlyFormat, WeightOnlyOptions,
};
pub use weight_only::{
    HessianData, HessianRequest, HessianSource, gptq_requests, quantize_weight_only,
    quantize_weight_only_gptq, quantize_weight_only_spilling,
};

/// The op-quantizer registries under one path: the dynamic op quantizers (`dynamic/ops/`) and the
/// static rule table (`qdq/rules.rs`, as `static_ops`).
pub mod ops {
    pub use crate::dynamic::ops::{DYNAMIC_OPS, DynamicOp};
    pub use crate::qdq::rules as static_ops;
}
