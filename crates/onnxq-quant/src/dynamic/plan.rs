//! The dynamic pass's plan: what an op quantizer reads while planning ([`PlanCx`]) and the data it
//! returns ([`NodePlan`]: inputs quantized at run time, weights quantized offline and how). Shared
//! by the driver, the weight quantization, the emit helpers and every op quantizer.

use onnxq_ir::{Graph, Node, NodeId, ValueId};

use crate::edit::input;
use crate::numerics::QuantType;
use crate::options::DynamicOptions;
use crate::weights::{Source, dims, f32_data, resolve};

/// What a node quantizer reads while planning.
pub struct PlanCx<'g> {
    /// The node's graph.
    pub graph: &'g Graph,
    /// Enclosing graphs, parent first (empty for the main graph).
    pub outer: &'g [&'g Graph],
    /// The run's options.
    pub opts: &'g DynamicOptions,
}

/// How one weight input is quantized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WeightKey {
    pub(crate) source: Source,
    /// How the stored tensor and its parameters are laid out.
    pub layout: Layout,
    /// Per-channel axis (of the stored layout), or per tensor.
    pub axis: Option<usize>,
    /// Target type.
    pub qtype: QuantType,
    /// Symmetric range.
    pub symmetric: bool,
    /// Reduced (7-bit) range.
    pub reduce_range: bool,
}

/// The stored layout of a quantized weight and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    /// As the float tensor; per-channel parameters are 1-D.
    AsIs,
    /// 2-D, transposed (Gemm with `transB = 1`).
    Transposed,
    /// Per-channel parameters shaped `[C, 1, …, 1]` with one scalar zero point (0), for ops that
    /// apply the scales after an integer product over NCHW data (ConvInteger).
    ConvChannels,
    /// LSTM `W`/`R` `[D, 4H, K]` stored as `[D, K, 4H]` (DynamicQuantizeLSTM), with one scale per
    /// direction, or per gate row (`[D, 4H]`) when `per_channel`.
    Lstm {
        /// Parameters per gate row instead of per direction.
        per_channel: bool,
    },
}

/// A constant input to quantize offline.
#[derive(Debug, Clone)]
pub struct WeightPlan {
    /// The value the node reads.
    pub value: ValueId,
    /// Base for the quantized initializers' names (`<name>_quantized`, `_scale`, `_zero_point`).
    pub name: String,
    /// Dims of the stored (possibly transposed) tensor.
    pub dims: Vec<usize>,
    /// How to quantize it.
    pub key: WeightKey,
}

/// A node quantizer's decision for one node: data only.
#[derive(Debug, Clone)]
pub struct NodePlan {
    /// The node.
    pub node: NodeId,
    /// Inputs quantized at run time, in the op's order (e.g. MatMul: A, then B when B is dynamic).
    pub dynamic: Vec<ValueId>,
    /// Inputs quantized offline.
    pub weights: Vec<WeightPlan>,
}

impl<'g> PlanCx<'g> {
    /// A weight plan for input `slot` of `node`, if that input is a float32 constant.
    pub fn weight(
        &self,
        node: &Node,
        slot: usize,
        layout: Layout,
        axis: impl FnOnce(usize) -> Option<usize>,
        (qtype, symmetric, reduce_range): (QuantType, bool, bool),
    ) -> Result<Option<WeightPlan>, String> {
        let Some(v) = input(node, slot) else {
            return Err(format!("input {slot} is missing"));
        };
        let Some(c) = resolve(self.graph, self.outer, v) else {
            return Ok(None);
        };
        if f32_data(c.tensor).is_none() {
            return Err(format!(
                "weight `{}` is {}, not float32",
                c.name,
                onnxq_ir::DataType(c.tensor.data_type())
            ));
        }
        let mut d = dims(c.tensor);
        match layout {
            Layout::Transposed if d.len() != 2 => {
                return Err(format!(
                    "weight `{}` has rank {}, transposing needs rank 2",
                    c.name,
                    d.len()
                ));
            }
            Layout::Lstm { .. } if d.len() != 3 => {
                return Err(format!(
                    "weight `{}` has rank {}, LSTM weights have rank 3",
                    c.name,
                    d.len()
                ));
            }
            Layout::Transposed | Layout::Lstm { .. } => {
                let r = d.len();
                d.swap(r - 2, r - 1);
            }
            Layout::AsIs | Layout::ConvChannels => {}
        }
        // A shared weight transposed for this node only gets a name of its own.
        let shared = layout == Layout::Transposed && self.graph.value(v).uses().len() > 1;
        let name = if shared {
            format!("{}_transposed", c.name)
        } else {
            c.name.to_owned()
        };
        let axis = axis(d.len());
        Ok(Some(WeightPlan {
            value: v,
            name,
            key: WeightKey {
                source: c.source,
                layout,
                axis,
                qtype,
                symmetric,
                reduce_range,
            },
            dims: d,
        }))
    }

    /// Input `slot` of `node` as a run-time activation: present and not a constant.
    pub fn activation(&self, node: &Node, slot: usize, what: &str) -> Result<ValueId, String> {
        let v = input(node, slot).ok_or_else(|| format!("input {what} is missing"))?;
        if self.is_constant(v) {
            return Err(format!("input {what} is a constant; fold it instead"));
        }
        Ok(v)
    }

    /// Whether `v` is a constant (so it must not be quantized as a run-time activation).
    pub fn is_constant(&self, v: ValueId) -> bool {
        resolve(self.graph, self.outer, v).is_some()
    }
}
