//! onnxq's quantization: exact numerics, the op-quantizer registry, and the passes that plan and
//! apply a quantization to a model.
//!
//! Op quantizers only *plan* (they read the graph and return data); the apply step of each pass
//! edits the graph. A node that cannot be quantized is a report entry, never an error.

pub mod dynamic;
pub mod numerics;
pub mod ops;
mod opset;
pub mod options;
pub mod overrides;
pub mod qdq;
pub mod qoperator;
pub mod report;
mod weights;

pub use dynamic::quantize_dynamic;
pub use options::{DynamicOptions, StaticOptions};
pub use qdq::quantize_qdq;
pub use qoperator::lower_qoperator;
pub use report::Report;

/// Why a quantization run could not proceed. Per-node problems are report entries, not errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model's opset is too old or cannot be raised safely.
    #[error("{0}")]
    Opset(String),
    /// An include/exclude entry matches nothing, or another selection problem.
    #[error("{0}")]
    Selection(String),
    /// The model lacks something every quantization needs.
    #[error("{0}")]
    Model(String),
    /// A broken invariant inside onnxq (a bug, never user input).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Opset(_) => Some(
                "convert the model to a newer opset first, e.g. `onnx.version_converter.convert_version(model, 13)`, \
                 or re-export it with opset 13 or newer",
            ),
            Error::Selection(_) => {
                Some("node names are listed by `onnxq inspect --json`; globs use `*` and `?`")
            }
            Error::Model(_) => None,
            Error::Internal(_) => Some("this is a bug in onnxq; please report it with the model"),
        }
    }
}

/// Adds an opset import of `domain`, version 1, unless the model has one (for the com.microsoft
/// operators a pass emits).
pub(crate) fn import_domain(model: &mut onnxq_ir::Model, domain: &str) {
    if model.opset(domain).is_none() {
        model
            .proto
            .opset_import
            .push(onnxq_ir::proto::OperatorSetIdProto {
                domain: Some(domain.to_owned()),
                version: Some(1),
            });
    }
}

/// Result with the quantization crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
