//! The comparison's error type: the models or the data do not fit, or an engine failed.

/// A comparison failure: the models do not belong together, or cannot be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The two models, or the data, do not fit (different inputs, nothing matched, ...).
    #[error("{message}")]
    Mismatch {
        /// What does not fit, naming the tensors.
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] onnxq_engine::EngineError),
    /// Calibration data could not be read.
    #[error(transparent)]
    Data(#[from] onnxq_calib::Error),
    /// A model could not be prepared.
    #[error(transparent)]
    Model(#[from] onnxq_ir::Error),
}

impl Error {
    pub(crate) fn mismatch(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Mismatch {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl From<String> for Error {
    fn from(reason: String) -> Error {
        Error::Data(onnxq_calib::Error::Data(reason))
    }
}
