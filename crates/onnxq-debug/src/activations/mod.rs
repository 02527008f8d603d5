//! Activation matching: which tensors of the two models are compared, planned from the graphs
//! and the engines' output types before any sample runs ([`plan`]), then measured sample by
//! sample (`run.rs`).
//!
//! Inside the quantized model, each QuantizeLinear → DequantizeLinear pair on an activation
//! compares its input with the pair's output (ONNX Runtime's `qdq_err`), keyed as ORT keys it:
//! `X` for `X → Q → DQ → X_DequantizeLinear_Output[_1]` and for `X_QuantizeLinear_Input → Q → DQ
//! → X`. Across the models, the float tensor `X` is compared with the pair's output when `X` has
//! a pair (ORT's `xmodel_err`), else with the quantized model's float tensor of the same name,
//! else with `X_quantized` dequantized with its scale and zero point (QOperator models).

mod params;
mod plan;
mod run;

pub use plan::{Counterpart, Item, Plan, node_outputs, plan, wanted};
pub use run::{Counters, Measured, measure};
