//! Errors of loading, checking and saving models. Every message names the file, tensor, node or
//! value it is about, and [`Error::hint`] says what the user can do.

use std::path::PathBuf;

/// An error from the IR crate. Messages have no trailing period and name what they are about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done: "read", "write", "create", ...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid ONNX protobuf message.
    #[error("`{}` is not a valid ONNX model: {reason}", path.display())]
    Decode {
        /// The model file.
        path: PathBuf,
        /// What the protobuf decoder said.
        reason: String,
    },
    /// The message decoded but breaks a rule of the ONNX format.
    #[error("invalid model `{}`: {reason}", path.display())]
    Invalid {
        /// The model file (empty for in-memory models).
        path: PathBuf,
        /// What is wrong, naming the node, value or tensor.
        reason: String,
    },
    /// A tensor's external data cannot be used.
    #[error("{tensor} of `{}`: {reason}", model.display())]
    ExternalData {
        /// The model file that refers to the data.
        model: PathBuf,
        /// Which tensor ("initializer `w`", "attribute `value` of node `c`").
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A path to read is a named pipe, device, socket or folder: reading it could block forever or
    /// never end, so it is refused before it is opened.
    #[error("cannot read `{}` ({what}): it is {kind}, not a regular file", path.display())]
    NotAFile {
        /// What the file was to be ("model file", "data file of initializer `w` in `m.onnx`").
        what: String,
        /// The path.
        path: PathBuf,
        /// What it is instead ("a named pipe (FIFO)", "a folder", ...).
        kind: &'static str,
    },
    /// The graph's internal maps disagree (a bug in an editing pass, never user input).
    #[error("graph invariant broken: {0}")]
    Invariant(String),
    /// An edit was asked that would break the graph (name clash, value still in use, ...).
    #[error("{0}")]
    Edit(String),
    /// An option value that cannot be honoured.
    #[error("{0}")]
    Option(String),
}

impl Error {
    /// A line telling the user what to do about this error, where there is something to say.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Decode { .. } => Some(
                "the file may be truncated or not an ONNX model; re-export it or check the download",
            ),
            Error::ExternalData { .. } => Some(
                "external data must be a relative path inside the model's folder (no absolute paths, \
                 no `..`, no links leading out) and cover the declared bytes; keep the `.data` file \
                 next to the model",
            ),
            Error::Invalid { .. } => {
                Some("the model breaks the ONNX format; `onnx.checker.check_model` gives details")
            }
            Error::NotAFile { .. } => Some(
                "onnxq reads models and external data only from regular files (a pipe or device \
                 could block it forever); copy the data into a file and give that path",
            ),
            Error::Invariant(_) => Some("this is a bug in onnxq; please report it with the model"),
            Error::Io { .. } | Error::Edit(_) | Error::Option(_) => None,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Result with the IR crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
