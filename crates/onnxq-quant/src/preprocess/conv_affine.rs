//! Conv followed by a Mul or an Add by a per-output-channel constant folds into the Conv:
//! `Conv(x, W, B) * c` is `Conv(x, W·c[m], B·c[m])` and `Conv(x, W, B) + c` is
//! `Conv(x, W, B + c[m])`, as ONNX Runtime's ConvMulFusion and ConvAddFusion do. The constant
//! must broadcast along the output channels only (a scalar, or `[M, 1, ..., 1]` aligned with the
//! channel axis), so every channel's scale or shift is one number; ORT's shape conditions are
//! kept exactly, so both fold the same pairs (ppocr-rec's `Mul` by a `[1]` stays, as in ORT).

use onnxq_ir::{Model, NodeId, Use, ValueId};

use crate::edit::{input, output, tensor};
use crate::weights::f32_values;
use onnxq_ir::Result;

/// A Conv → Mul/Add pair to fold.
struct Pair {
    conv: NodeId,
    next: NodeId,
    conv_out: ValueId,
    next_out: ValueId,
    /// Whether the second node is a Mul (else an Add).
    mul: bool,
    weight: (Vec<f32>, Vec<i64>),
    bias: Vec<f32>,
    /// The constant per output channel.
    per_channel: Vec<f32>,
}

/// Folds every eligible pair of the main graph, repeatedly (a Conv followed by Mul then Add
/// folds both); returns how many.
pub(crate) fn fold_conv_mul_add(m: &mut Model) -> Result<usize> {
    let mut done = 0;
    loop {
        let pairs = find(m);
        if pairs.is_empty() {
            break;
        }
        for p in &pairs {
            apply(m, p)?;
        }
        done += pairs.len();
        crate::weights::remove_unread_constants(&mut m.graph)?;
    }
    Ok(done)
}

fn apply(m: &mut Model, p: &Pair) -> Result<()> {
    let g = &mut m.graph;
    let (w, dims) = &p.weight;
    let channels = p.per_channel.len();
    let per = w.len() / channels;
    let c = &p.per_channel;
    let (w2, b2): (Vec<f32>, Vec<f32>) = if p.mul {
        let w2 = w.iter().enumerate().map(|(i, &x)| x * c[i / per]).collect();
        (w2, p.bias.iter().zip(c).map(|(b, s)| b * s).collect())
    } else {
        (
            w.clone(),
            p.bias.iter().zip(c).map(|(b, s)| b + s).collect(),
        )
    };
    let raw = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let base = g.value(p.conv_out).name().to_owned();
    if p.mul {
        let wname = g.fresh_name(&format!("{base}_mul_folded_weight"));
        let wv = g.add_initializer(&wname, tensor(dims.clone(), 1, raw(&w2)))?;
        g.set_input(p.conv, 1, Some(wv))?;
    }
    let bname = g.fresh_name(&format!("{base}_folded_bias"));
    let bv = g.add_initializer(&bname, tensor(vec![channels as i64], 1, raw(&b2)))?;
    g.set_input(p.conv, 2, Some(bv))?;
    // The second node's output name (perhaps the model's public one) moves to the Conv's.
    g.substitute(p.next_out, p.conv_out)?;
    g.remove_node(p.next)?;
    Ok(())
}

/// The pairs: a default-domain Conv with constant float32 weight (and bias) whose only reader is
/// a Mul or Add whose other input is a per-channel float32 constant. One per Conv per round.
fn find(m: &Model) -> Vec<Pair> {
    let g = &m.graph;
    let consts = |v: ValueId| f32_values(g, v);
    let default = |d: &str| matches!(d, "" | "ai.onnx");
    let mut pairs = Vec::new();
    for (id, conv) in g.nodes() {
        if conv.op_type() != "Conv" || !default(conv.domain()) {
            continue;
        }
        let Some(conv_out) = output(conv, 0) else {
            continue;
        };
        let [Use::Node { node: next, slot }] = g.value(conv_out).uses() else {
            continue;
        };
        let Some(n) = g.node(*next) else { continue };
        let mul = match n.op_type() {
            "Mul" => true,
            "Add" => false,
            _ => continue,
        };
        let other = input(n, 1 - *slot);
        let (Some(weight), Some(other), Some(next_out)) =
            (input(conv, 1).and_then(consts), other, output(n, 0))
        else {
            continue;
        };
        if !default(n.domain()) || other == conv_out {
            continue;
        }
        let channels = weight.1.first().copied().unwrap_or(0) as usize;
        let rank = weight.1.len();
        let Some(per_channel) =
            consts(other).and_then(|(v, d)| channel_values(v, &d, channels, rank))
        else {
            continue;
        };
        let bias = match input(conv, 2) {
            None => vec![0.0; channels],
            Some(b) => match consts(b) {
                Some((b, _)) if b.len() == channels => b,
                _ => continue,
            },
        };
        if channels == 0 || weight.0.len() % channels != 0 {
            continue;
        }
        pairs.push(Pair {
            conv: id,
            next: *next,
            conv_out,
            next_out,
            mul,
            weight,
            bias,
            per_channel,
        });
    }
    pairs
}

/// The constant as one value per output channel, when it broadcasts against a Conv output of
/// rank `rank` along the channel axis only: a scalar, or dims right-aligned to `[N, M, s...]`
/// with 1 everywhere but the channel axis (and no leading axis beyond N).
fn channel_values(v: Vec<f32>, dims: &[i64], channels: usize, rank: usize) -> Option<Vec<f32>> {
    // As ONNX Runtime's fusions: a scalar, or `[M, 1, ...]` / `[1, M, 1, ...]`; a `[1]` (which
    // broadcasts along the last axis) is left alone, as ORT leaves it.
    if v.len() == 1 && dims.is_empty() {
        return Some(vec![v[0]; channels]);
    }
    // The channel axis (output axis 1) as an index into the right-aligned dims.
    if dims.len() + 1 < rank || dims.len() > rank {
        return None;
    }
    let ch = dims.len() + 1 - rank;
    let ok = dims.iter().enumerate().all(|(i, &d)| {
        if i == ch {
            d as usize == channels
        } else {
            d == 1
        }
    });
    (ok && v.len() == channels).then_some(v)
}
