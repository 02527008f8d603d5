//! Conv followed by BatchNormalization, all constant but the input, folds into one Conv:
//! `s = scale / sqrt(var + ε)`, `W'[m] = W[m] · s[m]`, `B' = (B - mean) · s + bias`, in float32 as
//! ONNX Runtime's own fusion computes it. Quantizing the folded Conv quantizes the weights the model
//! really applies, where an unfolded BatchNormalization stays float between two quantized tensors.

use onnxq_ir::{Model, NodeId, Use, ValueId};

use crate::edit::{float_attr, input, int_attr_of, output, tensor};
use crate::weights::f32_values;
use onnxq_ir::Result;

/// A Conv → BatchNormalization pair to fold, with the constants read.
struct Pair {
    conv: NodeId,
    bn: NodeId,
    conv_out: ValueId,
    bn_out: ValueId,
    weight: (Vec<f32>, Vec<i64>),
    bias: Option<Vec<f32>>,
    /// scale, bias, mean, var of the BatchNormalization.
    stats: [Vec<f32>; 4],
    epsilon: f32,
}

/// Folds every eligible pair of the main graph; returns how many.
pub(crate) fn fold_conv_bn(m: &mut Model) -> Result<usize> {
    let pairs = find(m);
    let g = &mut m.graph;
    for p in &pairs {
        let (w, dims) = &p.weight;
        let channels = dims[0] as usize;
        let per = w.len() / channels.max(1);
        let [scale, beta, mean, var] = &p.stats;
        let s: Vec<f32> = (0..channels)
            .map(|c| scale[c] / (var[c] + p.epsilon).sqrt())
            .collect();
        let w2: Vec<f32> = w.iter().enumerate().map(|(i, &x)| x * s[i / per]).collect();
        let b2: Vec<f32> = (0..channels)
            .map(|c| (p.bias.as_ref().map_or(0.0, |b| b[c]) - mean[c]) * s[c] + beta[c])
            .collect();
        let raw = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let base = g.value(p.conv_out).name().to_owned();
        let wname = g.fresh_name(&format!("{base}_bn_folded_weight"));
        let wv = g.add_initializer(&wname, tensor(dims.clone(), 1, raw(&w2)))?;
        let bname = g.fresh_name(&format!("{base}_bn_folded_bias"));
        let bv = g.add_initializer(&bname, tensor(vec![channels as i64], 1, raw(&b2)))?;
        g.set_input(p.conv, 1, Some(wv))?;
        g.set_input(p.conv, 2, Some(bv))?;
        // The BatchNormalization's output name (the model's public one) moves to the Conv's.
        g.substitute(p.bn_out, p.conv_out)?;
        g.remove_node(p.bn)?;
    }
    crate::weights::remove_unread_constants(g)?;
    Ok(pairs.len())
}

/// The pairs: a default-domain Conv with a constant float32 weight (and bias), whose only reader is
/// a BatchNormalization in inference form (one output, constant float32 statistics).
fn find(m: &Model) -> Vec<Pair> {
    let g = &m.graph;
    let consts = |v: Option<ValueId>| f32_values(g, v?);
    let mut pairs = Vec::new();
    for (id, conv) in g.nodes() {
        if conv.op_type() != "Conv" || !matches!(conv.domain(), "" | "ai.onnx") {
            continue;
        }
        let Some(conv_out) = output(conv, 0) else {
            continue;
        };
        let [
            Use::Node {
                node: bn_id,
                slot: 0,
            },
        ] = g.value(conv_out).uses()
        else {
            continue;
        };
        let Some(bn) = g.node(*bn_id) else { continue };
        let inference = int_attr_of(bn, "training_mode", 0) == 0
            && bn.outputs().iter().skip(1).flatten().next().is_none();
        if bn.op_type() != "BatchNormalization"
            || !matches!(bn.domain(), "" | "ai.onnx")
            || !inference
        {
            continue;
        }
        let (Some(weight), Some(bn_out)) = (consts(input(conv, 1)), output(bn, 0)) else {
            continue;
        };
        let channels = weight.1.first().copied().unwrap_or(0) as usize;
        let bias = match input(conv, 2) {
            None => None,
            Some(b) => match consts(Some(b)) {
                Some((b, _)) if b.len() == channels => Some(b),
                _ => continue,
            },
        };
        let stats: Option<Vec<Vec<f32>>> = (1..5)
            .map(|i| {
                consts(input(bn, i))
                    .map(|c| c.0)
                    .filter(|v| v.len() == channels)
            })
            .collect();
        let Some(Ok(stats)) = stats.map(<[Vec<f32>; 4]>::try_from) else {
            continue;
        };
        if channels == 0 || weight.0.len() % channels != 0 {
            continue;
        }
        pairs.push(Pair {
            conv: id,
            bn: *bn_id,
            conv_out,
            bn_out,
            weight,
            bias,
            stats,
            epsilon: float_attr(bn, "epsilon", 1e-5),
        });
    }
    pairs
}
