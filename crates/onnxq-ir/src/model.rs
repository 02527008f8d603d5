//! A loaded model: the main graph as IR plus everything else of the `ModelProto`, untouched.

use bytes::Bytes;
use onnxq_proto as pb;
use prost::Message;

use crate::error::Result;
use crate::graph::Graph;
use crate::graph::from_proto::graph_from_proto;
use crate::graph::to_proto::graph_to_proto;
use crate::mapped::Sources;

/// An ONNX model. Tensor bytes are slices of the memory-mapped input files until something replaces
/// them, so holding a model costs little memory whatever its size.
#[derive(Debug, Clone)]
pub struct Model {
    /// Every `ModelProto` field but `graph` (IR version, opsets, producer, metadata, functions,
    /// training info), as read.
    pub proto: pb::ModelProto,
    /// The main graph.
    pub graph: Graph,
    pub(crate) sources: Sources,
    pub(crate) external_files: Vec<ExternalFile>,
    /// The file it was loaded from (`None` for a model decoded from memory): error messages about
    /// copies of the model (the engine's temporary one) name this file instead.
    pub(crate) path: Option<std::path::PathBuf>,
}

/// An external data file the model was loaded from.
#[derive(Debug, Clone)]
pub struct ExternalFile {
    /// The location as written in the model (relative to its folder).
    pub location: String,
    /// The file's size in bytes.
    pub size: u64,
    /// How many tensors point into it.
    pub tensors: u64,
    /// How many of its bytes those tensors cover.
    pub bytes: u64,
    pub(crate) data: Bytes,
}

impl Model {
    /// The opset version imported for `domain` ("" or "ai.onnx" for the default domain).
    pub fn opset(&self, domain: &str) -> Option<i64> {
        let norm = |d: &str| {
            if d == "ai.onnx" {
                String::new()
            } else {
                d.to_owned()
            }
        };
        self.proto
            .opset_import
            .iter()
            .find(|o| norm(o.domain()) == norm(domain))
            .map(|o| o.version())
    }

    /// The memory maps the model's tensors point into; [`Sources::release`] drops pages of data a
    /// pass has finished reading.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Adds maps the model's tensors now also point into (a pass's [`crate::Spill`]), so saving
    /// releases their pages after streaming them.
    pub fn add_sources(&mut self, sources: Sources) {
        self.sources.extend(sources);
    }

    /// The file the model was loaded from (`None` when decoded from memory).
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// The external data files the model was loaded from, by location.
    pub fn external_files(&self) -> &[ExternalFile] {
        &self.external_files
    }

    /// The whole model as a proto, nodes topologically sorted; tensor bytes are shared, not copied.
    pub fn to_proto(&self) -> Result<pb::ModelProto> {
        let mut m = self.proto.clone();
        m.graph = Some(graph_to_proto(&self.graph)?);
        Ok(m)
    }

    /// A model with every field of this one (opsets, metadata, tensor maps, path) but the main
    /// graph, which is built from `graph`: for derived models such as a slice of this one's nodes
    /// (tensors in `graph` may be this model's mapped slices; nothing is copied).
    pub fn with_graph(&self, graph: pb::GraphProto) -> Result<Model> {
        let path = self.path.clone().unwrap_or_else(|| "<memory>".into());
        let graph = graph_from_proto(graph, &Vec::new())
            .map_err(|reason| crate::error::Error::Invalid { path, reason })?;
        Ok(Model {
            proto: self.proto.clone(),
            graph,
            sources: self.sources.clone(),
            external_files: self.external_files.clone(),
            path: self.path.clone(),
        })
    }

    /// The model serialized in memory with every tensor inline (for engines and small models; use
    /// [`crate::save`] for files, which streams and handles external data).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.to_proto()?.encode_to_vec())
    }
}
