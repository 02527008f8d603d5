//! The editable graph: nodes and values in arenas with typed ids, values first-class with one
//! definition and a list of uses.
//!
//! Ids are never reused or renumbered while a graph lives (removed nodes leave a tombstone); save
//! compacts. The editing verbs (`edit.rs`) are the only code that changes `names`, `def` and `uses`
//! of a built graph, so they stay consistent; [`Graph::validate`] checks that they do.
//!
//! - `types.rs`: ids, [`Def`], [`Use`], [`Value`], [`Attribute`], [`Node`], [`Port`], the [`Graph`]
//!   arenas (their wiring fields private to this module).
//! - `query.rs`: read-only accessors.
//! - `edit.rs`: the editing verbs.
//! - `order.rs`: [`Graph::topological_order`].
//! - `validate.rs`: [`Graph::validate`].
//! - `from_proto.rs` / `to_proto.rs`: lossless conversion from and to `GraphProto`.

mod edit;
pub(crate) mod from_proto;
mod order;
mod query;
pub(crate) mod to_proto;
mod types;
mod validate;

pub use types::{Attribute, Def, Graph, Node, NodeId, Port, Use, Value, ValueId};
