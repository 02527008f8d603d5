//! MatMul followed by Add becomes one Gemm where ONNX Runtime's basic level fuses them
//! (MatMulAddFusion): both MatMul inputs of rank 2, float32, the MatMul read only by the Add, and
//! the Add's other input broadcastable to the `[M, N]` result in Gemm's one-directional way
//! (`[N]`, `[1, N]`, `[M, 1]`, `[M, N]` or a scalar). Inputs of higher rank are left alone: ORT
//! wraps those in Reshapes only when every dim is static, which helps neither quantization nor
//! speed on CPU.

use onnxq_infer::{Dim, Fact};
use onnxq_ir::{Model, Node, NodeId, Use, ValueId};

use crate::edit::{input, output};
use onnxq_ir::Result;

/// A MatMul → Add pair: `(matmul, add, a, b, c, add_out)`.
type Pair = (NodeId, NodeId, ValueId, ValueId, ValueId, ValueId);

/// Fuses every eligible pair of the main graph; returns how many.
pub(crate) fn fuse_matmul_add(m: &mut Model) -> Result<usize> {
    let inf = onnxq_infer::infer(m)?;
    let g = &m.graph;
    let fact = |v: ValueId| inf.facts.get(g.value(v).name());
    let default = |n: &Node| matches!(n.domain(), "" | "ai.onnx");
    let mut pairs: Vec<Pair> = Vec::new();
    for (id, mm) in g.nodes() {
        if mm.op_type() != "MatMul" || !default(mm) {
            continue;
        }
        let (Some(a), Some(b), Some(out)) = (input(mm, 0), input(mm, 1), output(mm, 0)) else {
            continue;
        };
        let [Use::Node { node: add, slot }] = g.value(out).uses() else {
            continue;
        };
        let Some(n) = g.node(*add).filter(|n| n.op_type() == "Add" && default(n)) else {
            continue;
        };
        let (Some(c), Some(add_out)) = (input(n, 1 - *slot), output(n, 0)) else {
            continue;
        };
        let (Some(fa), Some(fb), Some(fc)) = (fact(a), fact(b), fact(c)) else {
            continue;
        };
        if c != out && fits(fa, fb, fc) {
            pairs.push((id, *add, a, b, c, add_out));
        }
    }
    let g = &mut m.graph;
    for &(mm, add, a, b, c, add_out) in &pairs {
        let name = match g.node(mm).map(Node::name) {
            Some("") | None => g.fresh_name("Gemm"),
            Some(n) => g.fresh_name(&format!("{n}_gemm")),
        };
        let tmp = g.fresh_name(&format!("{}_gemm", g.value(add_out).name()));
        let node = Node::new("Gemm", "", Some(name));
        let (_, outs) = g.add_node(node, &[Some(a), Some(b), Some(c)], &[Some(&tmp)])?;
        let Some(gemm_out) = outs[0] else { continue };
        // The Add's output name (perhaps the model's public one) moves to the Gemm's.
        g.substitute(add_out, gemm_out)?;
        g.remove_node(add)?;
        g.remove_node(mm)?;
    }
    Ok(pairs.len())
}

/// Whether `A [M, K] · B [K, N] + C` is a Gemm: float32 throughout, ranks 2, `C` broadcast to
/// `[M, N]` one way.
fn fits(a: &Fact, b: &Fact, c: &Fact) -> bool {
    let float = [a, b, c].iter().all(|f| f.elem == Some(1));
    let (Some(sa), Some(sb), Some(sc)) = (&a.shape, &b.shape, &c.shape) else {
        return false;
    };
    if !float || sa.len() != 2 || sb.len() != 2 {
        return false;
    }
    let (m, n) = (&sa[0], &sb[1]);
    let one = Dim::known(1);
    let fits_dim = |d: &Dim, full: &Dim| d == full || *d == one;
    match sc.as_slice() {
        [] => true,
        [d] => d == n || *d == one,
        [d0, d1] => fits_dim(d0, m) && fits_dim(d1, n),
        _ => false,
    }
}
