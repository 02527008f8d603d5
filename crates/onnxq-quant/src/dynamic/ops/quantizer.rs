//! The trait every dynamic op quantizer implements: `plan` reads the node and returns data, `apply`
//! emits the pattern for that plan. Kept out of the registry (`mod.rs`), so op files import the
//! trait without importing the registry that lists them.

use onnxq_ir::{Graph, NodeId};

use crate::dynamic::emit::Shared;
use crate::dynamic::plan::{NodePlan, PlanCx};
use crate::error::Result;

/// One op type's dynamic-quantization recipe.
pub trait DynamicOp: Sync {
    /// The ONNX op type handled.
    fn op_type(&self) -> &'static str;
    /// The op's domain ("" for the default ONNX domain).
    fn domain(&self) -> &'static str {
        ""
    }
    /// Decides, without editing, how to quantize `node`; `Err` is the reason to leave it in float.
    fn plan(&self, cx: &PlanCx<'_>, node: NodeId) -> Result<NodePlan, String>;
    /// Emits the quantized pattern for a plan and returns the pattern's name for the report.
    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String>;
}
