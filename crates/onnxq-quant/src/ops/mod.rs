//! The op-quantizer registries. Dynamic: adding an op is two edits, a file here implementing the
//! trait and one line in the registry slice. Static (QDQ): one row in [`static_ops::STATIC_OPS`].

mod attention;
mod conv;
mod embed_layer_norm;
mod gather;
mod gemm;
mod lstm;
mod matmul;
pub mod static_ops;

use onnxq_ir::{Graph, NodeId};

use crate::Result;
use crate::dynamic::{NodePlan, PlanCx, Shared};

/// One op type's dynamic-quantization recipe.
pub trait DynamicOp: Sync {
    /// The ONNX op type handled.
    fn op_type(&self) -> &'static str;
    /// The op's domain ("" for the default ONNX domain).
    fn domain(&self) -> &'static str {
        ""
    }
    /// Decides, without editing, how to quantize `node`; `Err` is the reason to leave it in float.
    fn plan(&self, cx: &PlanCx<'_>, node: NodeId) -> Result<NodePlan, String>;
    /// Emits the quantized pattern for a plan and returns the pattern's name for the report.
    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String>;
}

/// Every dynamic op quantizer, in the order ONNX Runtime's registry lists them.
pub static DYNAMIC_OPS: &[&dyn DynamicOp] = &[
    &conv::Conv,
    &matmul::MatMul,
    &gemm::Gemm,
    &attention::Attention,
    &lstm::Lstm,
    &gather::Gather,
    &embed_layer_norm::EmbedLayerNorm,
];
