//! The quantization report: every candidate node, quantized or skipped, with the reason.

use serde::Serialize;

/// What happened to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Rewritten into `pattern` (e.g. "MatMulInteger").
    Quantized {
        /// The emitted op pattern.
        pattern: String,
    },
    /// Left in float.
    Skipped {
        /// Why, in words a user can act on.
        reason: String,
    },
}

/// One node's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Where the node is: "main" or the path of subgraphs ("main/If_0.then_branch").
    pub graph: String,
    /// The node name (or its first output's name when it has none).
    pub node: String,
    /// Its op type.
    pub op_type: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The report of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Mode, e.g. "dynamic".
    pub mode: String,
    /// One entry per candidate node, in graph order.
    pub nodes: Vec<Entry>,
    /// Opset of the default domain before and after (raised when a pattern needs it).
    pub opset: (i64, i64),
}

impl Report {
    /// Number of quantized nodes.
    pub fn quantized(&self) -> usize {
        self.nodes
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Quantized { .. }))
            .count()
    }

    /// Skipped nodes.
    pub fn skipped(&self) -> impl Iterator<Item = &Entry> {
        self.nodes
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Skipped { .. }))
    }
}
