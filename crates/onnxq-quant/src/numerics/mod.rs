//! Numerics: ONNX Runtime's scale/zero-point math reproduced exactly (`params.rs`) and the quantize
//! kernels that read weights in place (`kernels.rs`). Everything is re-exported here, so callers
//! name `numerics::QuantType`, `numerics::quantize_weight`, ...

mod kernels;
mod params;

pub use kernels::{
    F32Data, QuantizedTensor, dequantize, from_storage, min_max, nonfinite_count, quantize_one,
    quantize_tensor, quantize_weight, quantize_with, to_storage, weight_params,
};
pub(crate) use params::snap_to_uint8;
pub use params::{QParams, QuantType, compute_qparams};
