//! The planning stage of weight-only quantization: which nodes can be rewritten and with what
//! weight, or why not (a report entry). Reads the graph, never edits it.

use onnxq_ir::{Graph, Node, NodeId, ValueId};

use crate::edit::input;
use crate::weights::{Source, dims, resolve};

/// The element types a weight-only weight may have (ONNX data type numbers).
pub(crate) const FLOAT: i32 = 1;
pub(crate) const FLOAT16: i32 = 10;
pub(crate) const BFLOAT16: i32 = 16;

/// A MatMul whose constant B is rewritten.
#[derive(Debug, Clone)]
pub(crate) struct MatMulPlan {
    /// The MatMul.
    pub(crate) node: NodeId,
    /// Its A input.
    pub(crate) a: ValueId,
    /// Its B input (the weight, possibly through Identity or from an enclosing graph).
    pub(crate) b: ValueId,
    /// The weight, once per distinct constant.
    pub(crate) weight: Source,
    /// The weight tensor's name, a base for the quantized tensors' names.
    pub(crate) weight_name: String,
    /// Rows (input features) and columns (output features) of B viewed as 2-D.
    pub(crate) k: usize,
    pub(crate) n: usize,
    /// B's element type.
    pub(crate) dtype: i32,
}

/// Plans a MatMul, or says why it stays float.
pub(crate) fn plan_matmul(
    g: &Graph,
    outer: &[&Graph],
    id: NodeId,
    node: &Node,
) -> Result<MatMulPlan, String> {
    let a = input(node, 0).ok_or("input A is missing")?;
    let b = input(node, 1).ok_or("input B is missing")?;
    let c = resolve(g, outer, b).ok_or(
        "input B is not a constant (weight-only quantization rewrites constant weights only)",
    )?;
    let dtype = c.tensor.data_type();
    if !matches!(dtype, FLOAT | FLOAT16 | BFLOAT16) {
        return Err(format!(
            "weight `{}` is not float32, float16 or bfloat16",
            c.name
        ));
    }
    let d = dims(c.tensor);
    if d.len() < 2 {
        return Err(format!("weight `{}` has fewer than 2 dimensions", c.name));
    }
    let (lead, kn) = d.split_at(d.len() - 2);
    if lead.iter().any(|&x| x != 1) {
        return Err(format!(
            "weight `{}` has batch dimensions {lead:?} (only [1, ..., 1, K, N] weights are quantized)",
            c.name
        ));
    }
    if d.len() > 2 {
        // MatMulNBits' output is A's batch dims + [N]: equal to MatMul's only when A has at least
        // B's rank (ORT then adds no reshape either).
        let rank_a = g
            .declared_type(a)
            .and_then(|t| t.shape.as_ref())
            .map(|s| s.dim.len());
        if rank_a.is_none_or(|r| r < d.len()) {
            return Err(format!(
                "weight `{}` has rank {} and input A's rank is unknown or lower: the output \
                 reshape this needs is not supported yet",
                c.name,
                d.len()
            ));
        }
    }
    if kn[0] == 0 || kn[1] == 0 {
        return Err(format!("weight `{}` is empty", c.name));
    }
    Ok(MatMulPlan {
        node: id,
        a,
        b,
        weight: c.source,
        weight_name: c.name.to_owned(),
        k: kn[0],
        n: kn[1],
        dtype,
    })
}
