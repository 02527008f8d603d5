//! Why a quantized model can run slower than its float model, read from its node pattern: the
//! patterns ONNX Runtime's CPU provider has no fast path for, each with the option that avoids
//! it. Facts measured on ORT 1.31 (x86-64, AVX-512 VNNI, one thread): dynamic ConvInteger runs
//! 8× slower than float Conv on mobilenetv2; static QDQ with int8 activations into MatMul runs
//! 2-3× slower than float on minilm-l6-v2 where uint8 activations run 2× faster; and every
//! QuantizeLinear / DequantizeLinear left after ORT's fusions is a pass over its tensor in float.

use std::collections::BTreeMap;

use onnxq_ir::{Graph, Model, ValueId};

use crate::weights::constant;

/// One pattern that costs time, with what avoids it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// What the model contains ("12 ConvInteger nodes ...").
    pub what: String,
    /// The option that avoids it.
    pub avoid: String,
}

/// The slow patterns of `quant`. `optimized`, when given, is the same model as ONNX Runtime's
/// CPU provider optimized it (every level): the Q/DQ nodes still in it are the ones its fusions
/// could not absorb.
pub fn causes(quant: &Model, optimized: Option<&Model>) -> Vec<Cause> {
    let mut out = Vec::new();
    let g = &quant.graph;
    let conv_integer = count(g, |op| op == "ConvInteger");
    if conv_integer > 0 {
        out.push(Cause {
            what: format!(
                "{conv_integer} ConvInteger node(s): ONNX Runtime's CPU ConvInteger has no fused \
                 int8 kernel (im2col, an integer GEMM, then float rescaling)"
            ),
            avoid: "keep Conv float in dynamic mode (`--op-types` without Conv, e.g. \
                    `--op-types MatMul,Gemm,Attention,LSTM,Gather`), or quantize statically \
                    (`--mode static`), where Conv runs as one QLinearConv"
                .into(),
        });
    }
    let s8 = int8_matmul_activations(g);
    let s8_qop = int8_qoperator_activations(g);
    if s8 + s8_qop > 0 && cfg!(target_arch = "x86_64") {
        let what = match (s8, s8_qop) {
            (0, q) => format!("{q} QLinearConv/QLinearMatMul/QGemm node(s)"),
            (m, 0) => format!("{m} MatMul/Gemm node(s)"),
            (m, q) => format!("{m} MatMul/Gemm and {q} QLinearConv/QLinearMatMul/QGemm node(s)"),
        };
        out.push(Cause {
            what: format!(
                "int8 activations (S8S8) into {what}: on x86-64 ONNX Runtime's fast integer \
                 kernels take uint8 activations (mobilenetv2 QOperator S8S8 runs 4x slower than \
                 float, U8S8 2x faster)"
            ),
            avoid: "`--activation-type QUInt8` (U8S8)".into(),
        });
    }
    if let Some(o) = optimized
        && let Some(c) = unfused(&o.graph)
    {
        out.push(c);
    }
    out
}

fn count(g: &Graph, f: impl Fn(&str) -> bool) -> usize {
    g.nodes().filter(|(_, n)| f(n.op_type())).count()
}

fn is_constant(g: &Graph, v: ValueId) -> bool {
    constant(g, v).is_some()
}

/// MatMul/Gemm nodes fed (through a DequantizeLinear) by an activation QuantizeLinear with an
/// int8 zero point.
fn int8_matmul_activations(g: &Graph) -> usize {
    let int8_q = |v: ValueId| -> bool {
        let Some(n) = g.producer(v).and_then(|p| g.node(p)) else {
            return false;
        };
        n.op_type() == "QuantizeLinear"
            && n.inputs()
                .first()
                .copied()
                .flatten()
                .is_some_and(|x| !is_constant(g, x))
            && n.inputs()
                .get(2)
                .copied()
                .flatten()
                .and_then(|z| constant(g, z))
                .is_some_and(|t| t.data_type == Some(3))
    };
    g.nodes()
        .filter(|(_, n)| matches!(n.op_type(), "MatMul" | "Gemm"))
        .filter(|(_, n)| {
            n.inputs().iter().flatten().any(|&v| {
                g.producer(v).and_then(|p| g.node(p)).is_some_and(|d| {
                    d.op_type() == "DequantizeLinear"
                        && d.inputs().first().copied().flatten().is_some_and(int8_q)
                })
            })
        })
        .count()
}

/// QOperator nodes whose activation zero point (input 2) is an int8 constant.
fn int8_qoperator_activations(g: &Graph) -> usize {
    g.nodes()
        .filter(|(_, n)| matches!(n.op_type(), "QLinearConv" | "QLinearMatMul" | "QGemm"))
        .filter(|(_, n)| {
            n.inputs()
                .get(2)
                .copied()
                .flatten()
                .and_then(|z| constant(g, z))
                .is_some_and(|t| t.data_type == Some(3))
        })
        .count()
}

/// The Q/DQ nodes on activations that ORT's fusions left, and the float ops around them.
fn unfused(g: &Graph) -> Option<Cause> {
    let mut left = 0;
    let mut around: BTreeMap<String, usize> = BTreeMap::new();
    for (_, n) in g.nodes() {
        let dq = n.op_type() == "DequantizeLinear";
        if !(dq || n.op_type() == "QuantizeLinear") {
            continue;
        }
        let Some(x) = n.inputs().first().copied().flatten() else {
            continue;
        };
        if is_constant(g, x) {
            continue;
        }
        // The float side: a DequantizeLinear's readers, a QuantizeLinear's producer.
        let float_nodes: Vec<_> = if dq {
            n.outputs()
                .iter()
                .flatten()
                .flat_map(|&y| g.reader_nodes(y))
                .collect()
        } else {
            g.producer(x).into_iter().collect()
        };
        let mut beside_float = false;
        for f in float_nodes {
            if let Some(f) = g.node(f)
                && !matches!(f.op_type(), "QuantizeLinear" | "DequantizeLinear")
            {
                *around.entry(f.op_type().to_owned()).or_default() += 1;
                beside_float = true;
            }
        }
        // The graph input's QuantizeLinear and the output's DequantizeLinear are not a break.
        left += usize::from(beside_float);
    }
    if left == 0 {
        return None;
    }
    let mut ops: Vec<(String, usize)> = around.into_iter().collect();
    ops.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let list: Vec<String> = ops
        .iter()
        .take(6)
        .map(|(op, n)| format!("{op} ×{n}"))
        .collect();
    Some(Cause {
        what: format!(
            "{left} QuantizeLinear/DequantizeLinear node(s) on activations are left after ONNX \
             Runtime's fusions, each a pass over its tensor, around float nodes ({}): Q/DQ chains \
             broken by float nodes",
            list.join(", ")
        ),
        avoid: "quantize only the heavy ops (`--op-types Conv,MatMul,Gemm`), so that no \
                conversion sits between them and the float ops"
            .into(),
    })
}
