//! The static pass's emit stages, with ORT's names: quantized constants stored behind a lone
//! DequantizeLinear, the Q/DQ pair(s) of every activation (shared, dedicated per consumer, or
//! converted for mixed precision), then the int32 biases dequantized under their own names.

use std::collections::BTreeMap;

use onnxq_ir::proto as pb;
use onnxq_ir::{Def, Graph, NodeId, Use, ValueId};

use crate::edit::{add, add_node, init, int_attr, node_label, tensor};
use crate::error::{Error, Result};
use crate::numerics::{QParams, QuantType, to_storage};
use crate::options::StaticOptions;
use crate::qdq::overrides::{Resolved, ResolvedConvert};
use crate::qdq::params::int32_bias;
use crate::qdq::plan::{DoneWeight, Emitted, Marks, Params, Quantized, Role};
use crate::weights::{f32_data, remove_if_unused, resolve};

/// What the emit stages read: the marking, the parameters and the options.
pub(crate) struct Cx<'a> {
    pub(crate) marks: &'a Marks<'a>,
    pub(crate) params: Params<'a>,
    pub(crate) overrides: &'a BTreeMap<ValueId, Resolved>,
    pub(crate) opts: &'a StaticOptions,
    /// The domain of the Q/DQ nodes ("" or com.microsoft).
    pub(crate) domain: &'a str,
}

/// Stores every quantized constant behind a DequantizeLinear its readers now read; returns what
/// was stored and the lowest weight SQNR of each reading node, by label.
pub(crate) fn store_constants<'a>(
    g: &mut Graph,
    cx: &Cx<'a>,
    done: Vec<DoneWeight>,
) -> Result<(Emitted<'a>, BTreeMap<String, f64>)> {
    let mut emitted = Emitted {
        quantized: BTreeMap::new(),
        weights: BTreeMap::new(),
        conversions: BTreeMap::new(),
    };
    let mut sqnr: BTreeMap<String, f64> = BTreeMap::new();
    for w in done {
        let name = g.value(w.value).name().to_owned();
        let pdims: Vec<i64> = match w.q.axis {
            Some(_) => vec![w.q.params.len() as i64],
            None => Vec::new(),
        };
        let data = tensor(
            w.dims.iter().map(|&d| d as i64).collect(),
            w.qtype.onnx_type(),
            w.q.data,
        );
        let (scale, zp) = param_tensors(&w.q.params, w.qtype, pdims);
        let (sv, zv, dq) = stored_quantized(
            g,
            &name,
            [("_quantized", data), ("_scale", scale), ("_zero_point", zp)],
            w.q.axis,
            cx.domain,
        )?;
        if let Some(db) = w.q.sqnr_db {
            for u in g.value(w.value).uses() {
                if let Use::Node { node, .. } = u
                    && let Some(n) = g.node(*node)
                {
                    let e = sqnr.entry(node_label(g, n)).or_insert(db);
                    *e = e.min(db);
                }
            }
        }
        g.replace_uses(w.value, dq, |_| false)
            .map_err(Error::edit)?;
        if w.q.params.len() == 1 {
            let q = Quantized {
                scale: sv,
                zero_point: zv,
                params: w.q.params[0],
            };
            emitted.quantized.insert(w.value, q);
        }
        emitted.weights.insert(w.value, (sv, w.q.params));
        remove_if_unused(g, w.value);
    }
    Ok((emitted, sqnr))
}

/// The Q/DQ pairs of the marked activations: those with parameters of their own first, then
/// those sharing another tensor's (in rounds, as a provider may itself share). Returns the
/// activations left in float for lack of a calibrated range.
pub(crate) fn emit_activations<'a>(
    g: &mut Graph,
    cx: &Cx<'a>,
    emitted: &mut Emitted<'a>,
) -> Result<Vec<String>> {
    let marks = cx.marks;
    let runtime: Vec<ValueId> = marks
        .order
        .iter()
        .flatten()
        .copied()
        .filter(|v| !emitted.weights.contains_key(v))
        .collect();
    let mut unranged = Vec::new();
    for &v in &runtime {
        if marks.roles[&v] != Role::Activation {
            continue;
        }
        let Some(&(p, qtype)) = cx.params.own.get(&marks.key(v)) else {
            unranged.push(g.value(v).name().to_owned());
            continue;
        };
        let name = g.value(v).name().to_owned();
        let (scale, zp) = param_tensors(&[p], qtype, Vec::new());
        let sv = init(g, &format!("{name}_scale"), scale)?;
        let zv = init(g, &format!("{name}_zero_point"), zp)?;
        let q = Quantized {
            scale: sv,
            zero_point: zv,
            params: p,
        };
        emit_activation(g, cx, emitted, marks.key(v), v, q)?;
    }
    let mut pending: Vec<(ValueId, ValueId)> = runtime
        .iter()
        .filter_map(|&v| match marks.roles[&v] {
            Role::SameAs(p) => Some((v, p)),
            _ => None,
        })
        .collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut left = Vec::new();
        for (v, p) in pending {
            let producer = match g.value(v).def() {
                Def::Node { node, .. } => Some(*node),
                _ => None,
            };
            match emitted.for_consumer(p, producer) {
                Some(q) => emit_activation(g, cx, emitted, v, v, q)?,
                None if marks
                    .roles
                    .get(&p)
                    .is_some_and(|r| matches!(r, Role::SameAs(_))) =>
                {
                    left.push((v, p))
                }
                // The provider was never quantized (no range): this tensor stays float too.
                None => {}
            }
        }
        if left.len() == before {
            break;
        }
        pending = left;
    }
    Ok(unranged)
}

/// The pair(s) of activation `v` with parameters `q`, converted when its override (under `key`)
/// converts it; recorded in `emitted`.
fn emit_activation<'a>(
    g: &mut Graph,
    cx: &Cx<'a>,
    emitted: &mut Emitted<'a>,
    key: ValueId,
    v: ValueId,
    q: Quantized,
) -> Result<()> {
    match conversion(g, cx.overrides, cx.params, key, v)? {
        None => pair(g, cx.marks, cx.opts, v, q, cx.domain)?,
        Some(c) => {
            converted_pair(g, v, q, c, cx.domain)?;
            emitted.conversions.insert(v, c);
        }
    }
    emitted.quantized.insert(v, q);
    Ok(())
}

/// Biases: int32 with scale alpha · s_in · s_w, dequantized under the bias's own name.
pub(crate) fn emit_biases(g: &mut Graph, cx: &Cx<'_>, emitted: &Emitted<'_>) -> Result<()> {
    if !cx.opts.quantize_bias {
        return Ok(());
    }
    for (&b, bias) in &cx.marks.biases {
        let (Some(x), Some((_, w_params))) = (
            emitted.for_consumer(bias.input, Some(bias.node)),
            emitted.weights.get(&bias.weight),
        ) else {
            continue;
        };
        let Some(c) = resolve(g, &[], b) else {
            continue;
        };
        let Some(data) = f32_data(c.tensor) else {
            continue;
        };
        let name = c.name.to_owned();
        let bdims = c.tensor.dims.clone();
        let Some((scales, q)) = int32_bias(data, x.params.scale, w_params, (bias.alpha, bias.beta))
        else {
            continue;
        };
        let per_channel = scales.len() > 1;
        let qt = tensor(bdims, 6, q.iter().flat_map(|v| v.to_le_bytes()).collect());
        let st = tensor(
            vec![scales.len() as i64],
            1,
            scales.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        let zt = tensor(
            if per_channel {
                vec![scales.len() as i64]
            } else {
                Vec::new()
            },
            6,
            vec![0; 4 * if per_channel { scales.len() } else { 1 }],
        );
        let (_, _, dq) = stored_quantized(
            g,
            &name,
            [
                ("_quantized", qt),
                ("_quantized_scale", st),
                ("_quantized_zero_point", zt),
            ],
            per_channel.then_some(0),
            cx.domain,
        )?;
        g.substitute(b, dq).map_err(Error::edit)?;
        remove_if_unused(g, b);
        // The int32 bias holds beta · C (ORT keeps C and drops beta: a wrong model for beta != 1).
        if let Some(n) = g.node_mut(bias.node) {
            for a in &mut n.attributes {
                if a.name() == "beta" {
                    a.proto.f = Some(1.0);
                }
            }
        }
    }
    Ok(())
}

/// Scale (float32) and zero-point (`qtype`) tensors of shape `dims` for `params`.
fn param_tensors(
    params: &[QParams],
    qtype: QuantType,
    dims: Vec<i64>,
) -> (pb::TensorProto, pb::TensorProto) {
    let scales = params.iter().flat_map(|p| p.scale.to_le_bytes()).collect();
    let zps: Vec<i32> = params.iter().map(|p| p.zero_point).collect();
    (
        tensor(dims.clone(), 1, scales),
        tensor(dims, qtype.onnx_type(), to_storage(&zps, qtype)),
    )
}

/// A constant stored quantized: initializers `<name><suffix>` for the data, scale and zero point
/// (in that order) read by `<name>_DequantizeLinear` (per `axis` if given); returns the scale,
/// the zero point and the DequantizeLinear's output.
fn stored_quantized(
    g: &mut Graph,
    name: &str,
    tensors: [(&str, pb::TensorProto); 3],
    axis: Option<usize>,
    domain: &str,
) -> Result<(ValueId, ValueId, ValueId)> {
    let mut ids = Vec::with_capacity(3);
    for (suffix, t) in tensors {
        ids.push(init(g, &format!("{name}{suffix}"), t)?);
    }
    let attrs = axis
        .map(|a| vec![int_attr("axis", a as i64)])
        .unwrap_or_default();
    let dq = add(
        g,
        ("DequantizeLinear", domain),
        &format!("{name}_DequantizeLinear"),
        &[Some(ids[0]), Some(ids[1]), Some(ids[2])],
        &format!("{name}_DequantizeLinear_Output"),
        attrs,
    )?;
    Ok((ids[1], ids[2], dq))
}

/// The `<T>_scale_convert` / `<T>_zero_point_convert` initializers of `v` when its override
/// (under `key`) converts it, with the `convert` entry.
fn conversion<'o>(
    g: &mut Graph,
    overrides: &'o BTreeMap<ValueId, Resolved>,
    params: Params<'_>,
    key: ValueId,
    v: ValueId,
) -> Result<Option<(Quantized, &'o ResolvedConvert)>> {
    let Some(c) = overrides.get(&key).and_then(|o| o.convert.as_ref()) else {
        return Ok(None);
    };
    let name = g.value(v).name().to_owned();
    let &(p, qtype) = params.converted.get(&key).ok_or_else(|| {
        Error::Selection(format!(
            "TensorQuantOverrides `{name}` convert: the tensor has no calibrated range; give the convert's scale and zero_point"
        ))
    })?;
    let (scale, zp) = param_tensors(&[p], qtype, Vec::new());
    let sv = init(g, &format!("{name}_scale_convert"), scale)?;
    let zv = init(g, &format!("{name}_zero_point_convert"), zp)?;
    let q = Quantized {
        scale: sv,
        zero_point: zv,
        params: p,
    };
    Ok(Some((q, c)))
}

/// Mixed precision, ORT's layout: `T → Q1 → DQ1 → (consumers of T's own type)` and
/// `Q1 → DQ1' → Q2 → DQ2 → (consumers of the converted type)`; when every consumer reads the
/// converted type, `Q1 → DQ1 → Q2 → DQ2`. A graph output keeps its name on DQ1, or on DQ2 when
/// every consumer (or none) reads the converted type.
fn converted_pair(
    g: &mut Graph,
    v: ValueId,
    q: Quantized,
    (q2, convert): (Quantized, &ResolvedConvert),
    domain: &str,
) -> Result<()> {
    let name = g.value(v).name().to_owned();
    let readers = g.reader_nodes(v);
    let all_converted = readers.iter().all(|&n| convert.receives(n));
    let is_output = g.outputs().iter().any(|p| p.value == v);
    let (q1_node, dq1) = add_pair(g, v, q, domain, "")?;
    let q1_out = g
        .node(q1_node)
        .and_then(|n| n.outputs()[0])
        .ok_or_else(|| Error::Internal("QuantizeLinear without output".into()))?;
    let q2_in = if all_converted {
        dq1
    } else {
        add(
            g,
            ("DequantizeLinear", domain),
            &format!("{name}_convert_clone_DequantizeLinear"),
            &[Some(q1_out), Some(q.scale), Some(q.zero_point)],
            &format!("{name}_convert_QuantizeLinear_Input"),
            Vec::new(),
        )?
    };
    let q2_out = add(
        g,
        ("QuantizeLinear", domain),
        &format!("{name}_convert_QuantizeLinear"),
        &[Some(q2_in), Some(q2.scale), Some(q2.zero_point)],
        &format!("{name}_convert_QuantizeLinear_Output"),
        Vec::new(),
    )?;
    let dq2 = add(
        g,
        ("DequantizeLinear", domain),
        &format!("{name}_convert_DequantizeLinear"),
        &[Some(q2_out), Some(q2.scale), Some(q2.zero_point)],
        &format!("{name}_convert_DequantizeLinear_Output"),
        Vec::new(),
    )?;
    for node in readers {
        let target = if convert.receives(node) { dq2 } else { dq1 };
        redirect(g, node, v, target)?;
    }
    if is_output {
        let last = if all_converted { dq2 } else { dq1 };
        hand_output(g, v, q1_node, last)?;
    }
    Ok(())
}

/// The Q/DQ pair(s) of activation `v`: one shared by every consumer, or with `DedicatedQDQPair` one
/// per quantized consumer when there are several (suffixes `_1`, `_2`, ...; other readers keep
/// the float tensor).
fn pair(
    g: &mut Graph,
    marks: &Marks<'_>,
    opts: &StaticOptions,
    v: ValueId,
    q: Quantized,
    domain: &str,
) -> Result<()> {
    let receivers = marks.receivers.get(&v).map_or(&[][..], Vec::as_slice);
    if !opts.dedicated_qdq_pair || receivers.len() < 2 {
        return qdq_pair(g, v, q, domain);
    }
    for (i, &node) in receivers.iter().enumerate() {
        let (_, dq) = add_pair(g, v, q, domain, &format!("_{}", i + 1))?;
        redirect(g, node, v, dq)?;
    }
    Ok(())
}

/// Makes `node` read `to` wherever it read `from`.
fn redirect(g: &mut Graph, node: NodeId, from: ValueId, to: ValueId) -> Result<()> {
    g.replace_uses(
        from,
        to,
        |u| !matches!(u, Use::Node { node: n, .. } if *n == node),
    )
    .map_err(Error::edit)
}

/// Adds `QuantizeLinear(v)` → `DequantizeLinear` with ORT's names plus `suffix`; returns the
/// QuantizeLinear node and the DequantizeLinear's output.
fn add_pair(
    g: &mut Graph,
    v: ValueId,
    q: Quantized,
    domain: &str,
    suffix: &str,
) -> Result<(NodeId, ValueId)> {
    let name = g.value(v).name().to_owned();
    let params = [Some(q.scale), Some(q.zero_point)];
    let (q_node, qv) = add_node(
        g,
        ("QuantizeLinear", domain),
        &format!("{name}_QuantizeLinear{suffix}"),
        &[Some(v), params[0], params[1]],
        &format!("{name}_QuantizeLinear_Output{suffix}"),
        Vec::new(),
    )?;
    let dq = add(
        g,
        ("DequantizeLinear", domain),
        &format!("{name}_DequantizeLinear{suffix}"),
        &[Some(qv), params[0], params[1]],
        &format!("{name}_DequantizeLinear_Output{suffix}"),
        Vec::new(),
    )?;
    Ok((q_node, dq))
}

/// `T → QuantizeLinear → DequantizeLinear → (every node that read T)`. A graph output keeps its
/// name: the DequantizeLinear writes it and the producer's tensor becomes `<T>_QuantizeLinear_Input`.
fn qdq_pair(g: &mut Graph, v: ValueId, q: Quantized, domain: &str) -> Result<()> {
    let (q_node, dq) = add_pair(g, v, q, domain, "")?;
    if g.outputs().iter().any(|p| p.value == v) {
        return hand_output(g, v, q_node, dq);
    }
    g.replace_uses(
        v,
        dq,
        |u| matches!(u, Use::Node { node, .. } if *node == q_node),
    )
    .map_err(Error::edit)
}

/// Graph output `v` (and reads of it from subgraphs, and any reader left) moves to `last`, the
/// DequantizeLinear that stands for it, which takes its name; `v` stays the input of `q_node`
/// under the name `<T>_QuantizeLinear_Input`.
fn hand_output(g: &mut Graph, v: ValueId, q_node: NodeId, last: ValueId) -> Result<()> {
    let name = g.value(v).name().to_owned();
    g.substitute(v, last).map_err(Error::edit)?;
    g.set_input(q_node, 0, Some(v)).map_err(Error::edit)?;
    let input_name = g.fresh_name(&format!("{name}_QuantizeLinear_Input"));
    g.rename(v, &input_name).map_err(Error::edit)
}
