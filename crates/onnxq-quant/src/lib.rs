//! onnxq's quantization: exact numerics, the op-quantizer registry, and the passes that plan and
//! apply a quantization to a model.
//!
//! Op quantizers only *plan* (they read the graph and return data); one apply pass edits the graph.
//! A node that cannot be quantized is a report entry, never an error.

pub mod numerics;
