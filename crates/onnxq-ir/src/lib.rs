//! onnxq's model representation: a lossless, editable ONNX graph IR and its file I/O.
//!
//! - [`load`] memory-maps a model (and its external data, refusing paths that leave the model's
//!   folder), decodes it without copying tensor bytes, checks it, and builds a [`Model`].
//! - [`Graph`] keeps nodes and values in arenas with typed ids ([`NodeId`], [`ValueId`]); values know
//!   their definition and uses; subgraphs are nested graphs. Its editing verbs are the only code that
//!   touches those maps, and [`Graph::validate`] checks them.
//! - [`save`] writes a model atomically, inline or with an external data file, streaming tensor bytes.
//!
//! This crate knows nothing of quantization, inference engines or terminals.

mod dtype;
mod error;
mod graph;
mod load;
mod mapped;
mod model;
mod paths;
mod save;
mod spill;
pub mod tensor;

pub use dtype::{DataType, TypedField};
pub use error::{Error, Result};
pub use graph::{Attribute, Def, Graph, Node, NodeId, Port, Use, Value, ValueId};
pub use load::{from_bytes, load};
pub use mapped::Sources;
pub use model::{ExternalFile, Model};
pub use onnxq_proto as proto;
pub use save::{
    DEFAULT_THRESHOLD, Layout, PROTO_LIMIT, Saved, Staged, save, save_staged, temp_file_in,
    temp_prefix,
};
pub use spill::{Spill, SpillMap, Spilled};
