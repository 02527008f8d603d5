//! `--weight-rounding gptq`: the static pass's weights of Conv, MatMul and Gemm rounded by GPTQ
//! on the grid their range gives (`numerics/gptq_grid.rs`) instead of to nearest. The caller
//! collects, for each [`RoundingRequest`], the Hessian of the layer's input on calibration data
//! (`onnxq-calib`'s `HessianSums`, Conv inputs as patches, one Hessian per group) and hands them
//! in through [`StaticOptions::rounding`](crate::StaticOptions); the constant stage then rounds
//! each weight that has one, and the report says what it bought (the layer outputs' SQNR on the
//! calibration inputs, nearest against GPTQ).

use onnxq_ir::{Def, Graph, Model, Node};

use crate::edit::{input, int_attr_of, node_label};
pub use crate::hessians::{LayerHessian, Layout, WeightRounding};
use crate::numerics::gptq::{GptqSettings, prepare};
use crate::numerics::gptq_grid::gptq_on_grid;
use crate::numerics::{F32Data, QParams, QuantType, QuantizedTensor, to_storage};
use crate::qdq::plan::{DoneWeight, Rounding};
use crate::weights::{dims, f32_data, resolve};

/// A Conv's geometry, for the patches its input Hessian is taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvGeometry {
    /// `group`.
    pub group: usize,
    /// `kernel_shape`.
    pub kernel: Vec<usize>,
    /// `strides`.
    pub strides: Vec<usize>,
    /// `pads` (begins, then ends).
    pub pads: Vec<usize>,
    /// `dilations`.
    pub dilations: Vec<usize>,
}

/// One Hessian a weight's rounding needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundingRequest {
    /// The weight: the node's input 1, by tensor name.
    pub weight: String,
    /// The layer's activation input (input 0), whose Hessian is wanted.
    pub input: String,
    /// Inputs per output (a Conv's channels per group × kernel size).
    pub k: usize,
    /// How the weight maps to GPTQ's rows.
    pub layout: Layout,
    /// For a Conv: the patches its kernel reads.
    pub conv: Option<ConvGeometry>,
}

/// GPTQ's damping, as a fraction of `mean(diag H)` (its usual 0.01).
const PERCDAMP: f64 = 0.01;

/// The weights of `model`'s main graph GPTQ can round, with what each needs; and the Conv /
/// MatMul / Gemm nodes it cannot, each with the reason.
pub fn rounding_requests(model: &Model) -> (Vec<RoundingRequest>, Vec<String>) {
    let g = &model.graph;
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    for (_, n) in g.nodes() {
        if !matches!(n.domain(), "" | "ai.onnx")
            || !matches!(n.op_type(), "Conv" | "MatMul" | "Gemm")
        {
            continue;
        }
        let (Some(x), Some(w)) = (input(n, 0), input(n, 1)) else {
            continue;
        };
        let Some(c) = resolve(g, &[], w).filter(|c| f32_data(c.tensor).is_some()) else {
            continue;
        };
        if !matches!(g.value(x).def(), Def::Input | Def::Node { .. }) {
            continue;
        }
        let why = if g.value(w).uses().len() != 1 {
            Err("its weight is shared by several nodes".to_owned())
        } else {
            request(n, &dims(c.tensor))
        };
        match why {
            Ok((k, layout, conv)) => out.push(RoundingRequest {
                weight: g.value(w).name().to_owned(),
                input: g.value(x).name().to_owned(),
                k,
                layout,
                conv,
            }),
            Err(why) => skipped.push(format!("{} ({why})", node_label(g, n))),
        }
    }
    (out, skipped)
}

/// K, the layout and the Conv geometry of node `n` with a weight of dims `d`.
fn request(n: &Node, d: &[usize]) -> Result<(usize, Layout, Option<ConvGeometry>), String> {
    let ints = |name: &str| -> Option<Vec<usize>> {
        let a = n.attribute(name)?;
        Some(
            a.proto
                .ints
                .iter()
                .map(|&v| usize::try_from(v).unwrap_or(0))
                .collect(),
        )
    };
    match n.op_type() {
        "Conv" => {
            let rank = d.len().saturating_sub(2);
            if !(1..=2).contains(&rank) {
                return Err(format!("a Conv of {rank} spatial dimensions"));
            }
            let auto = n
                .attribute("auto_pad")
                .and_then(|a| a.proto.s.as_deref())
                .unwrap_or(b"NOTSET");
            if !matches!(auto, b"NOTSET" | b"VALID") {
                return Err("auto_pad SAME_* (give explicit pads)".into());
            }
            let group = usize::try_from(int_attr_of(n, "group", 1)).unwrap_or(0);
            let geometry = ConvGeometry {
                group,
                kernel: ints("kernel_shape").unwrap_or_else(|| d[2..].to_vec()),
                strides: ints("strides").unwrap_or_else(|| vec![1; rank]),
                pads: if auto == b"VALID" {
                    vec![0; 2 * rank]
                } else {
                    ints("pads").unwrap_or_else(|| vec![0; 2 * rank])
                },
                dilations: ints("dilations").unwrap_or_else(|| vec![1; rank]),
            };
            if group == 0 || !d[0].is_multiple_of(group) || geometry.kernel != d[2..] {
                return Err("its group or kernel_shape does not match its weight".into());
            }
            Ok((
                d[1..].iter().product(),
                Layout::Conv { group },
                Some(geometry),
            ))
        }
        _ if d.len() != 2 => Err(format!("a {}-D weight", d.len())),
        "Gemm" if int_attr_of(n, "transA", 0) != 0 => Err("transA".into()),
        "Gemm" if int_attr_of(n, "transB", 0) != 0 => Ok((d[1], Layout::NK, None)),
        _ => Ok((d[0], Layout::KN, None)),
    }
}

/// The weight `data` of dims `d` quantized on `params` (per tensor, or per channel along `axis`)
/// with GPTQ against `layer`; with `[tr(WᵀHW), error nearest, error GPTQ]` summed over groups.
pub(crate) fn round(
    layer: &LayerHessian,
    data: F32Data<'_>,
    d: &[usize],
    axis: Option<usize>,
    params: Vec<QParams>,
    qtype: QuantType,
) -> Result<(QuantizedTensor, [f64; 3]), String> {
    let k = layer.k;
    let total: usize = d.iter().product();
    let (groups, out_axis) = match layer.layout {
        Layout::Conv { group } => (group, 0),
        Layout::KN => (1, 1),
        Layout::NK => (1, 0),
    };
    if k == 0 || !total.is_multiple_of(k) || axis.is_some_and(|a| a != out_axis) {
        return Err(format!(
            "the weight of dims {d:?} (axis {axis:?}) does not fit its Hessian (K = {k})"
        ));
    }
    let n = total / k / groups;
    if layer.values.len() != groups * k * k || n * groups * k != total {
        return Err(format!("{groups} Hessian(s) of K = {k} for dims {d:?}"));
    }
    // Output o of group gi and input i: where its value sits in `data`.
    let at = |gi: usize, i: usize, o: usize| match layer.layout {
        Layout::Conv { .. } => (gi * n + o) * k + i,
        Layout::KN => i * n + o,
        Layout::NK => o * k + i,
    };
    let range = qtype.full_range();
    let mut codes = vec![0i32; total];
    let mut energy = [0.0; 3];
    let settings = GptqSettings {
        percdamp: PERCDAMP,
        act_order: true,
    };
    for gi in 0..groups {
        let h = &layer.values[gi * k * k..(gi + 1) * k * k];
        let prepared = prepare(h.to_vec(), k, settings)?;
        let mut w = vec![0f32; k * n];
        for i in 0..k {
            for o in 0..n {
                w[i * n + o] = data.get(at(gi, i, o));
            }
        }
        let grids: Vec<QParams> = if params.len() == 1 {
            params.clone()
        } else {
            params[gi * n..(gi + 1) * n].to_vec()
        };
        let solved = gptq_on_grid(&w, n, &grids, range, &prepared, h)?;
        for i in 0..k {
            for o in 0..n {
                codes[at(gi, i, o)] = solved.codes[i * n + o];
            }
        }
        for (a, b) in energy.iter_mut().zip(solved.energy) {
            *a += b;
        }
    }
    let per_channel = |i: usize| match (axis, layer.layout) {
        (None, _) => 0,
        (Some(_), Layout::KN) => i % (n * groups),
        (Some(_), _) => i / k,
    };
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (i, &q) in codes.iter().enumerate() {
        let p = params[per_channel(i)];
        let x = f64::from(data.get(i));
        let e = x - f64::from(p.scale) * f64::from(q - p.zero_point);
        signal += x * x;
        noise += e * e;
    }
    let sqnr_db = (signal > 0.0).then(|| 10.0 * (signal / noise.max(f64::MIN_POSITIVE)).log10());
    Ok((
        QuantizedTensor {
            data: to_storage(&codes, qtype),
            params,
            axis,
            sqnr_db,
        },
        energy,
    ))
}

/// The report's notes on what rounding bought (per weight, the layer output's SQNR on the
/// calibration inputs rounded to nearest against GPTQ) and on the weights it could not round.
pub(crate) fn notes(g: &Graph, done: &[DoneWeight]) -> Vec<String> {
    let mut gains = Vec::new();
    let mut nearest = Vec::new();
    for d in done {
        let name = g.value(d.value).name();
        match &d.rounding {
            Some(Rounding::Gptq(e)) => gains.push((name, *e)),
            Some(Rounding::Nearest(why)) => nearest.push(format!("`{name}` ({why})")),
            None => {}
        }
    }
    let mut out = Vec::new();
    if !nearest.is_empty() {
        out.push(format!(
            "weight rounding (GPTQ) left {} weight(s) rounded to nearest: {}",
            nearest.len(),
            nearest.join(", ")
        ));
    }
    if gains.is_empty() {
        return out;
    }
    let db = |signal: f64, noise: f64| 10.0 * (signal / noise.max(f64::MIN_POSITIVE)).log10();
    let mut rises: Vec<(f64, &str)> = gains
        .iter()
        .map(|(name, [s, nearest, gptq])| (db(*s, *gptq) - db(*s, *nearest), *name))
        .collect();
    rises.sort_by(|a, b| a.0.total_cmp(&b.0));
    let median = rises[rises.len() / 2].0;
    let (lo, hi) = (rises[0], rises[rises.len() - 1]);
    out.push(format!(
        "weight rounding (GPTQ) on {} weights: the layer outputs' SQNR on the calibration inputs \
         rose by {median:+.1} dB (median; least {:+.1} dB at `{}`, most {:+.1} dB at `{}`) \
         over rounding to nearest",
        gains.len(),
        lo.0,
        lo.1,
        hi.0,
        hi.1
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(values: Vec<f64>) -> LayerHessian {
        LayerHessian {
            k: 2,
            layout: Layout::KN,
            values,
        }
    }

    /// A Hessian GPTQ cannot use, or one of the wrong size, is an error the pass turns into
    /// rounding to nearest with the reason (never a panic, never a wrong model).
    #[test]
    fn an_unusable_hessian_is_an_error_with_the_reason() {
        let w = [0.5f32, -0.25, 0.125, 1.0];
        let data = F32Data::Slice(&w);
        let p = vec![QParams {
            scale: 1.0 / 127.0,
            zero_point: 0,
        }];
        let nan = layer(vec![1.0, f64::NAN, f64::NAN, 1.0]);
        let why = round(&nan, data, &[2, 2], None, p.clone(), QuantType::I8).unwrap_err();
        assert!(why.contains("not finite"), "{why}");
        let small = layer(vec![1.0]);
        assert!(round(&small, data, &[2, 2], None, p.clone(), QuantType::I8).is_err());
        let ok = layer(vec![2.0, 0.0, 0.0, 1.0]);
        let (q, _) = round(&ok, data, &[2, 2], None, p, QuantType::I8).unwrap();
        assert_eq!(q.data.len(), 4);
    }
}
