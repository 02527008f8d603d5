//! Type and shape inference (issue #13): symbolic dimensions ([`Dim`]) that propagate through
//! shape arithmetic as small polynomials, per-value facts ([`Fact`]: element type, dims, and the
//! contents of small tensors, computed by the constant evaluator [`eval`] that `preprocess`'s
//! folding shares), one rule per op in `rules/`, If/Loop/Scan bodies and model-local function
//! calls (`function.rs`), and the driver ([`infer`]) that runs them in topological order and
//! reports what it could not infer and where the model's declared shapes disagree, instead of
//! failing. On top of it, [`check`]
//! finds what ONNX Runtime 1.31 would refuse at load, naming the node: ops, input/output counts,
//! attributes and input element types against ORT's own operator schemas (`schema.rs`, parsing
//! `schemas.txt`, which `scripts/gen_op_schemas.py` writes from ORT's registry), and broadcasts.

mod check;
mod control;
mod dim;
pub mod eval;
mod fact;
mod function;
mod infer;
mod rules;
mod schema;

pub use check::{Problem, check};
pub use dim::Dim;
pub use fact::{Fact, to_type};
pub use infer::{Conflict, Inference, Unknown, describe, infer};
