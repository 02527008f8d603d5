//! The static pass's shared state: the marking result ([`Marks`]: which tensors are quantized and
//! how, ORT's `tensors_to_quantize` and `bias_to_quantize`), the activation parameters, and the
//! values the emit stages hand each other. Every stage reads these from here, never from the
//! driver (`mod.rs`), so no stage imports the file that runs it.

use std::collections::BTreeMap;

use onnxq_ir::{Graph, NodeId, Use, ValueId};

use crate::numerics::{QParams, QuantType, QuantizedTensor};
use crate::options::StaticOptions;
use crate::qdq::overrides::{Resolved, ResolvedConvert};

/// Calibrated ranges by tensor name.
pub type Ranges = BTreeMap<String, (f32, f32)>;

/// Parameters and type per tensor.
pub(crate) type ParamMap = BTreeMap<ValueId, (QParams, QuantType)>;

/// How a marked tensor is quantized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Role {
    Activation,
    Weight {
        axis: Option<usize>,
    },
    /// Reuses the scale and zero point of another tensor (data-movement ops).
    SameAs(ValueId),
}

/// An int32 bias and what its scale derives from.
#[derive(Debug, Clone)]
pub(crate) struct Bias {
    /// The node reading it (a Gemm's `beta` becomes 1 once the bias holds `beta · C`).
    pub(crate) node: NodeId,
    pub(crate) input: ValueId,
    pub(crate) weight: ValueId,
    /// Gemm's `alpha` (the bias scale is `alpha · s_in · s_w`) and `beta` (folded into the data).
    pub(crate) alpha: f32,
    pub(crate) beta: f32,
}

/// The marking state (ORT's `tensors_to_quantize` and `bias_to_quantize`).
pub(crate) struct Marks<'a> {
    pub(crate) opts: &'a StaticOptions,
    pub(crate) params: &'a ParamMap,
    pub(crate) overridden: &'a BTreeMap<ValueId, Resolved>,
    /// A producer output that took over a folded Relu/Clip's output: its parameters are the
    /// folded output's (range and overrides), as in ORT where the tensor is renamed.
    pub(crate) alias: BTreeMap<ValueId, ValueId>,
    /// Findings for the report.
    pub(crate) notes: Vec<String>,
    /// Relu/Clip nodes kept because their output's parameters would not clip.
    pub(crate) unclipped: Vec<String>,
    /// The quantized nodes reading each tensor, in graph order (for `DedicatedQDQPair`).
    pub(crate) receivers: BTreeMap<ValueId, Vec<NodeId>>,
    /// Marked tensors in marking order; a tensor unmarked again (a folded Relu/Clip's input)
    /// leaves `None`, so unmarking costs O(1) instead of a scan of every tensor marked so far.
    pub(crate) order: Vec<Option<ValueId>>,
    /// Each marked tensor's position in `order`.
    pub(crate) slot: BTreeMap<ValueId, usize>,
    pub(crate) roles: BTreeMap<ValueId, Role>,
    pub(crate) biases: BTreeMap<ValueId, Bias>,
}

impl<'a> Marks<'a> {
    /// Nothing marked yet.
    pub(crate) fn new(
        opts: &'a StaticOptions,
        params: &'a ParamMap,
        overridden: &'a BTreeMap<ValueId, Resolved>,
    ) -> Self {
        Marks {
            opts,
            params,
            overridden,
            alias: BTreeMap::new(),
            notes: Vec::new(),
            unclipped: Vec::new(),
            receivers: BTreeMap::new(),
            order: Vec::new(),
            slot: BTreeMap::new(),
            roles: BTreeMap::new(),
            biases: BTreeMap::new(),
        }
    }

    /// The value whose parameters `v` uses.
    pub(crate) fn key(&self, v: ValueId) -> ValueId {
        self.alias.get(&v).copied().unwrap_or(v)
    }

    /// Whether `v` is marked, as a tensor or as an int32 bias.
    pub(crate) fn marked(&self, v: Option<ValueId>) -> bool {
        v.is_some_and(|v| self.roles.contains_key(&v) || self.biases.contains_key(&v))
    }
}

/// Activation parameters: each tensor's own, and the second set of a mixed-precision `convert`.
#[derive(Clone, Copy)]
pub(crate) struct Params<'a> {
    pub(crate) own: &'a ParamMap,
    pub(crate) converted: &'a ParamMap,
}

/// The scale and zero-point values standing for a quantized tensor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quantized {
    pub(crate) scale: ValueId,
    pub(crate) zero_point: ValueId,
    pub(crate) params: QParams,
}

/// How a marked constant is quantized: type, per-channel axis, symmetry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConstSpec {
    pub(crate) value: ValueId,
    pub(crate) qtype: QuantType,
    pub(crate) axis: Option<usize>,
    pub(crate) symmetric: bool,
}

/// A marked constant after quantization.
pub(crate) struct DoneWeight {
    pub(crate) value: ValueId,
    pub(crate) qtype: QuantType,
    pub(crate) q: QuantizedTensor,
    pub(crate) dims: Vec<usize>,
    /// How a weight with a Hessian was rounded (`None`: no Hessian, to nearest).
    pub(crate) rounding: Option<Rounding>,
}

/// The outcome of GPTQ rounding for one weight.
#[derive(Debug, Clone)]
pub(crate) enum Rounding {
    /// Rounded by GPTQ: `[tr(WᵀHW), error nearest, error GPTQ]` on the calibration inputs.
    Gptq([f64; 3]),
    /// Rounded to nearest, because GPTQ could not use its Hessian (why).
    Nearest(String),
}

/// The quantized tensors by value, as the emit stages record them.
pub(crate) struct Emitted<'o> {
    /// Per-tensor parameters of every quantized tensor (constants and activations).
    pub(crate) quantized: BTreeMap<ValueId, Quantized>,
    /// Quantized constants: their scale value and parameters (one, or one per channel).
    pub(crate) weights: BTreeMap<ValueId, (ValueId, Vec<QParams>)>,
    /// Activations some consumers read converted (mixed precision), with the second parameters.
    pub(crate) conversions: BTreeMap<ValueId, (Quantized, &'o ResolvedConvert)>,
}

impl Emitted<'_> {
    /// What `consumer` reads of quantized tensor `v`: the converted parameters where it receives
    /// them.
    pub(crate) fn for_consumer(&self, v: ValueId, consumer: Option<NodeId>) -> Option<Quantized> {
        match self.conversions.get(&v) {
            Some((q2, c)) if consumer.is_some_and(|n| c.receives(n)) => Some(*q2),
            _ => self.quantized.get(&v).copied(),
        }
    }
}

/// How many nodes of this graph read `v`, or more than one if anything else (a graph output, a
/// subgraph) reads it too. ORT counts a node reading it twice as two; that differs only for
/// multi-input readers, never for the sole-consumer checks of a Relu/Clip this serves.
pub(crate) fn consumers(g: &Graph, v: ValueId) -> usize {
    if g.value(v)
        .uses()
        .iter()
        .any(|u| !matches!(u, Use::Node { .. }))
    {
        return usize::MAX;
    }
    g.reader_nodes(v).len()
}
