//! The input Hessians the static pass rounds weights with (`--weight-rounding gptq`), as the
//! caller hands them in through `StaticOptions::rounding`: plain data, so the options need
//! nothing else of the crate.

use std::collections::BTreeMap;

/// How a weight's values map to GPTQ's `[inputs, outputs]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A Conv weight `[O, C/group, kernel...]`: one Hessian per group.
    Conv {
        /// `group`.
        group: usize,
    },
    /// `[K, N]`: a MatMul's B, a Gemm's B without `transB`.
    KN,
    /// `[N, K]`: a Gemm's B with `transB`.
    NK,
}

/// A weight's input Hessians: `[K, K]` row-major each, one per group.
#[derive(Clone, PartialEq)]
pub struct LayerHessian {
    /// Inputs per output.
    pub k: usize,
    /// How the weight maps to GPTQ's rows.
    pub layout: Layout,
    /// The groups' Hessians, one after another.
    pub values: Vec<f64>,
}

/// The Hessians the static pass rounds weights with, by weight tensor name.
#[derive(Clone, PartialEq, Default)]
pub struct WeightRounding {
    /// By the weight's tensor name (the node's input 1).
    pub layers: BTreeMap<String, LayerHessian>,
}

impl std::fmt::Debug for WeightRounding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WeightRounding({} weights)", self.layers.len())
    }
}
