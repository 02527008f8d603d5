//! Type and shape inference (issue #13, in progress): symbolic dimensions ([`Dim`]) that
//! propagate through shape arithmetic as small polynomials, the base the per-op rules, the
//! inference driver and `onnxq preprocess` build on.

mod dim;

pub use dim::Dim;
