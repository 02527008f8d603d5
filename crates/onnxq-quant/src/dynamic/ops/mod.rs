//! The dynamic op-quantizer registry, [`DYNAMIC_OPS`], with one file per op beside it and the
//! [`DynamicOp`] trait they implement (`quantizer.rs`). Adding an op is two edits: a file here
//! implementing the trait, and one line in the registry slice.

mod attention;
mod conv;
mod embed_layer_norm;
mod gather;
mod gemm;
mod lstm;
mod matmul;
mod quantizer;

use onnxq_ir::Node;

pub use quantizer::DynamicOp;

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

/// The quantizer registered for `n`'s op type and domain, if any.
pub(crate) fn quantizer_for(n: &Node) -> Option<&'static dyn DynamicOp> {
    DYNAMIC_OPS
        .iter()
        .find(|op| op.op_type() == n.op_type() && n.domain() == op.domain())
        .copied()
}
