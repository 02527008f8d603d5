//! The graph's data: typed ids, values (with their definition and uses), nodes, attributes, ports,
//! and the [`Graph`] arenas that hold them.
//!
//! Fields that carry the wiring (`names`, `def`, `uses`, node inputs and outputs) are visible only
//! inside the `graph` module, so the editing verbs (`edit.rs`) and the builder from a proto
//! (`from_proto.rs`) are the only code that can change them.

use std::collections::HashMap;

use onnxq_proto as pb;

/// Index of a node in its graph's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(super) u32);

/// Index of a value in its graph's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub(super) u32);

impl NodeId {
    /// Position in the arena (stable for the life of the graph).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl ValueId {
    /// Position in the arena (stable for the life of the graph).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a value comes from.
#[derive(Debug, Clone)]
pub enum Def {
    /// A graph input fed at run time.
    Input,
    /// A constant initializer (its `name` field is unused: the value's name is authoritative). It may
    /// also be listed among the graph inputs, as IR < 4 models do.
    Initializer(Box<pb::TensorProto>),
    /// A sparse initializer (`values.name` unused, as above).
    SparseInitializer(Box<pb::SparseTensorProto>),
    /// Output `slot` of a node.
    Node {
        /// The producing node.
        node: NodeId,
        /// Output position.
        slot: usize,
    },
    /// A value of an enclosing graph, referred to by name from inside a subgraph.
    Outer,
    /// Named only by a `value_info` entry: neither produced nor used. Kept so a round trip loses
    /// nothing.
    Declared,
}

/// One use of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Use {
    /// Input `slot` of a node.
    Node {
        /// The consuming node.
        node: NodeId,
        /// Input position.
        slot: usize,
    },
    /// The graph's output at this position.
    Output(usize),
    /// Read by name from inside a subgraph of this node (at any depth). Such reads follow the value's
    /// name: [`Graph::rename`] updates them and [`Graph::replace_uses`] leaves them in place.
    Subgraph {
        /// The node holding the subgraph.
        node: NodeId,
    },
}

/// A named value (an SSA edge).
#[derive(Debug, Clone)]
pub struct Value {
    pub(super) name: String,
    pub(super) def: Def,
    pub(super) uses: Vec<Use>,
}

impl Value {
    /// The value's unique name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Where it comes from.
    pub fn def(&self) -> &Def {
        &self.def
    }
    /// Who reads it, in no particular order.
    pub fn uses(&self) -> &[Use] {
        &self.uses
    }
    /// The constant tensor, if the value is a dense initializer.
    pub fn initializer(&self) -> Option<&pb::TensorProto> {
        match &self.def {
            Def::Initializer(t) => Some(t),
            _ => None,
        }
    }
}

/// A node attribute: the proto for plain attributes; for `GRAPH`/`GRAPHS` attributes the bodies are
/// lifted out into nested [`Graph`]s (and `g`/`graphs` are left empty in `proto`).
#[derive(Debug, Clone)]
pub struct Attribute {
    /// Everything but the graph bodies, untouched.
    pub proto: pb::AttributeProto,
    /// Subgraph bodies (one for `GRAPH`, any number for `GRAPHS`).
    pub subgraphs: Vec<Graph>,
    /// Whether the body came from the single-graph field `g` (written back there).
    pub(super) in_g: bool,
}

impl Attribute {
    /// A plain (non-graph) attribute.
    pub fn new(proto: pb::AttributeProto) -> Attribute {
        Attribute {
            proto,
            subgraphs: Vec::new(),
            in_g: false,
        }
    }
    /// The attribute name.
    pub fn name(&self) -> &str {
        self.proto.name()
    }
}

/// An operator application.
#[derive(Debug, Clone)]
pub struct Node {
    /// Inputs; `None` is an omitted optional input (an empty name in ONNX).
    pub(super) inputs: Vec<Option<ValueId>>,
    /// Outputs; `None` is an omitted optional output.
    pub(super) outputs: Vec<Option<ValueId>>,
    /// Attributes, in file order.
    pub attributes: Vec<Attribute>,
    /// The rest of the `NodeProto` (name, op_type, domain, overload, doc_string, metadata, device
    /// configurations), untouched; its `input`, `output` and `attribute` lists are left empty.
    pub proto: pb::NodeProto,
}

impl Node {
    /// A node of `op_type` in `domain` ("" = the default ONNX domain) with no inputs or outputs yet.
    pub fn new(op_type: &str, domain: &str, name: Option<String>) -> Node {
        Node {
            inputs: Vec::new(),
            outputs: Vec::new(),
            attributes: Vec::new(),
            proto: pb::NodeProto {
                name,
                op_type: Some(op_type.to_owned()),
                domain: (!domain.is_empty()).then(|| domain.to_owned()),
                ..Default::default()
            },
        }
    }
    /// The operator type.
    pub fn op_type(&self) -> &str {
        self.proto.op_type()
    }
    /// The operator domain, "" for the default ONNX domain (`ai.onnx`).
    pub fn domain(&self) -> &str {
        match self.proto.domain() {
            "ai.onnx" => "",
            d => d,
        }
    }
    /// The node name ("" when it has none).
    pub fn name(&self) -> &str {
        self.proto.name()
    }
    /// Input values.
    pub fn inputs(&self) -> &[Option<ValueId>] {
        &self.inputs
    }
    /// Output values.
    pub fn outputs(&self) -> &[Option<ValueId>] {
        &self.outputs
    }
    /// The attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name() == name)
    }
}

/// A declared graph input, output or `value_info` entry: a value plus its type and doc. The proto's
/// `name` is unused; the value's name is authoritative, so renames need no bookkeeping here.
#[derive(Debug, Clone)]
pub struct Port {
    /// The value.
    pub value: ValueId,
    /// Type, doc string and metadata as written in the file.
    pub info: pb::ValueInfoProto,
}

/// A graph or subgraph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub(super) nodes: Vec<Option<Node>>,
    pub(super) values: Vec<Value>,
    pub(super) names: HashMap<String, ValueId>,
    /// Graph inputs, in order.
    pub(super) inputs: Vec<Port>,
    /// Graph outputs, in order.
    pub(super) outputs: Vec<Port>,
    /// `value_info` entries, in order. Entries of removed values stay as dead entries (their value
    /// is a tombstone) so positions in `value_info_of` stay valid; [`Graph::value_info`] and save
    /// skip them.
    pub(super) value_info: Vec<Port>,
    /// Positions in `value_info` of each value's entries, so edits touch only that value's entries
    /// instead of scanning every entry (a shape-inferred export has one per tensor).
    pub(super) value_info_of: HashMap<ValueId, Vec<usize>>,
    /// Dense initializers, in file order. A removed one stays as a tombstone (its value's
    /// definition is no longer an initializer); readers skip them.
    pub(super) initializers: Vec<ValueId>,
    /// Sparse initializers, in file order.
    pub(super) sparse_initializers: Vec<ValueId>,
    /// The rest of the `GraphProto` (name, doc_string, quantization_annotation, metadata_props).
    pub proto: pb::GraphProto,
}
