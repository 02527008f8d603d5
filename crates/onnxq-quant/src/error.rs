//! The crate's error type: why a quantization run could not proceed (per-node problems are report
//! entries, not errors), with a hint for the user.

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
    /// A setting no quantizer takes (bits, block size, ...), with what to give instead.
    #[error("{message}")]
    Options {
        /// What is wrong, naming the setting and its value.
        message: String,
        /// What to give instead.
        hint: &'static str,
    },
    /// A node cannot be converted to the opset a pass needs (`upgrade/`), with what to do.
    #[error("{message}")]
    Upgrade {
        /// Which node, which op, and why.
        message: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// The model lacks something every quantization needs.
    #[error("{0}")]
    Model(String),
    /// Writing or mapping the spill file of quantized tensors failed (disk full, permissions).
    #[error("{0}")]
    Spill(onnxq_ir::Error),
    /// Collecting calibration statistics (GPTQ's Hessians) failed; the cause is the collector's own
    /// error (an engine or data error of `onnxq-calib`), kept as the source.
    #[error("{0}")]
    Calibration(#[source] Box<dyn std::error::Error + Send + Sync>),
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
            Error::Options { hint, .. } | Error::Upgrade { hint, .. } => Some(hint),
            Error::Model(_) | Error::Calibration(_) => None,
            Error::Spill(_) => Some(
                "quantized tensors are staged in a temporary file beside the output: check the \
                 output folder's free space (about the output model's size) and permissions",
            ),
            Error::Internal(_) => Some("this is a bug in onnxq; please report it with the model"),
        }
    }

    /// A graph edit the pass planned was refused by the IR: the plan was wrong, so it is a bug.
    pub(crate) fn edit(e: onnxq_ir::Error) -> Error {
        Error::Internal(e.to_string())
    }
}

/// Result with the quantization crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
