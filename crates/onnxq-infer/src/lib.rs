//! Type and shape inference (issue #13, in progress): symbolic dimensions ([`Dim`]) that
//! propagate through shape arithmetic as small polynomials, per-value facts ([`Fact`]: element
//! type, dims, and the contents of small integer tensors), one rule per op in `rules/`, and the
//! driver ([`infer`]) that runs them in topological order and reports what it could not infer
//! and where the model's declared shapes disagree, instead of failing.

mod check;
mod control;
mod dim;
mod fact;
mod infer;
mod rules;

pub use check::{Problem, check};
pub use dim::Dim;
pub use fact::{Fact, to_type};
pub use infer::{Conflict, Inference, Unknown, describe, infer};
