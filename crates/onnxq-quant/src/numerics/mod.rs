//! Numerics: ONNX Runtime's scale/zero-point math reproduced exactly (`params.rs`), the quantize
//! kernels that read weights in place (`kernels.rs`) and the block-wise weight-only kernels
//! (`elems.rs` the weight's values in place, `blocks.rs` the block parameters and MatMulNBits' layout, `qdq_blocks.rs` blocked DequantizeLinear's, `gather_blocks.rs` for
//! GatherBlockQuantized, `rtn.rs` for ORT's RTN and k-quant,
//! `hqq.rs` for HQQ, `gptq.rs` for GPTQ, `gptq_grid.rs` for GPTQ on the static pass's fixed grids). Everything is re-exported here, so callers
//! name `numerics::QuantType`, `numerics::quantize_weight`, ...

pub mod blocks;
pub mod elems;
pub mod gather_blocks;
pub mod gptq;
pub mod gptq_grid;
pub mod hqq;
mod kernels;
mod params;
pub mod qdq_blocks;
pub mod relayout;
pub mod rtn;

pub use kernels::{
    F32Data, QuantizedTensor, dequantize, from_storage, min_max, nonfinite_count, quantize_one,
    quantize_tensor, quantize_weight, quantize_with, to_storage, weight_params,
};
pub(crate) use params::snap_to_uint8;
pub use params::{QParams, QuantType, compute_qparams};
