//! Rules for the ops shape subgraphs are made of (`Shape → Gather/Slice → Concat → Reshape`),
//! which carry dims as integer contents, and for the ops that move dims around.

use super::{Ctx, Outcome, axis};
use crate::dim::Dim;
use crate::fact::{Fact, MAX_VALUE_ELEMS, elem, from_tensor};

pub(crate) fn shape(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    let r = s.len() as i64;
    // Opset 15's start/end, clamped like Slice's.
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (a, b) = (clamp(c.int("start", 0)), clamp(c.int("end", r)));
    let dims = if a < b { s[a..b].to_vec() } else { Vec::new() };
    Ok(vec![Fact::int_vector(elem::INT64, dims)])
}

pub(crate) fn size(c: &Ctx<'_>) -> Outcome {
    let n = c
        .input(0)?
        .numel()
        .ok_or("the rank of input 0 is unknown")?;
    Ok(vec![Fact {
        elem: Some(elem::INT64),
        shape: Some(Vec::new()),
        value: Some(vec![n]),
        floats: None,
    }])
}

pub(crate) fn constant(c: &Ctx<'_>) -> Outcome {
    if let Some(t) = c.attr("value").and_then(|a| a.t.as_ref()) {
        return Ok(vec![from_tensor(t)]);
    }
    let scalar = |e: i32, v: Option<Vec<Dim>>| Fact {
        elem: Some(e),
        shape: Some(Vec::new()),
        value: v,
        floats: None,
    };
    if let Some(a) = c.attr("value_int").and_then(|a| a.i) {
        return Ok(vec![scalar(elem::INT64, Some(vec![Dim::known(a)]))]);
    }
    if let Some(v) = c.attr("value_ints") {
        let dims = v.ints.iter().map(|&x| Dim::known(x)).collect();
        return Ok(vec![Fact::int_vector(elem::INT64, dims)]);
    }
    if c.attr("value_float").is_some() {
        return Ok(vec![scalar(elem::FLOAT, None)]);
    }
    if let Some(v) = c.attr("value_floats") {
        let n = Dim::known(v.floats.len() as i64);
        return Ok(vec![Fact::tensor(Some(elem::FLOAT), Some(vec![n]))]);
    }
    Err("a Constant without a dense value attribute".into())
}

pub(crate) fn constant_of_shape(c: &Ctx<'_>) -> Outcome {
    let dims = c
        .input(0)?
        .value
        .clone()
        .ok_or("the shape input's values are not known")?;
    let t = c.attr("value").and_then(|a| a.t.as_ref());
    let e = t.and_then(|t| t.data_type).unwrap_or(elem::FLOAT);
    let mut out = Fact::tensor(Some(e), Some(dims.clone()));
    // A small integer fill is tracked (shape arithmetic builds vectors of ones this way).
    let fill = t
        .map(from_tensor)
        .and_then(|f| f.value)
        .and_then(|v| v.first().cloned());
    let count: Option<i64> = dims.iter().map(Dim::value).product();
    if let (Some(fill), Some(n)) = (fill, count)
        && (0..=MAX_VALUE_ELEMS as i64).contains(&n)
    {
        out.value = Some(vec![fill; n as usize]);
    }
    Ok(vec![out])
}

pub(crate) fn gather(c: &Ctx<'_>) -> Outcome {
    let (data, idx) = (c.input(0)?, c.input(1)?);
    let s = c.shape(0)?;
    let is = c.shape(1)?;
    let a = axis(c.int("axis", 0), s.len())?;
    let out: Vec<Dim> = s[..a]
        .iter()
        .chain(is)
        .chain(&s[a + 1..])
        .cloned()
        .collect();
    let mut f = Fact::tensor(data.elem, Some(out));
    // Picking dims out of a shape vector.
    if let (Some(v), Some(ix), 1) = (&data.value, idx.ints(), s.len()) {
        let n = v.len() as i64;
        f.value = ix
            .iter()
            .map(|&i| {
                let i = if i < 0 { i + n } else { i };
                (0..n).contains(&i).then(|| v[i as usize].clone())
            })
            .collect();
    }
    Ok(vec![f])
}

/// Axes from the attribute (before opset 13) or the second input.
fn axes(c: &Ctx<'_>) -> Result<Option<Vec<i64>>, String> {
    if c.opset >= 13 {
        c.const_ints(1)
    } else {
        Ok(c.ints("axes"))
    }
}

pub(crate) fn unsqueeze(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let s = c.shape(0)?;
    let ax = axes(c)?.ok_or("Unsqueeze without axes")?;
    let rank = s.len() + ax.len();
    let mut ax: Vec<usize> = ax
        .iter()
        .map(|&a| axis(a, rank))
        .collect::<Result<_, _>>()?;
    ax.sort_unstable();
    let mut rest = s.iter();
    let out = (0..rank)
        .map(|i| {
            if ax.contains(&i) {
                Some(Dim::known(1))
            } else {
                rest.next().cloned()
            }
        })
        .collect::<Option<Vec<_>>>()
        .ok_or("repeated Unsqueeze axes")?;
    let mut g = Fact::tensor(f.elem, Some(out));
    g.value = f.value.clone();
    Ok(vec![g])
}

pub(crate) fn squeeze(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let s = c.shape(0)?;
    let out: Vec<Dim> = match axes(c)? {
        Some(ax) => {
            let ax: Vec<usize> = ax
                .iter()
                .map(|&a| axis(a, s.len()))
                .collect::<Result<_, _>>()?;
            (0..s.len())
                .filter(|i| !ax.contains(i))
                .map(|i| s[i].clone())
                .collect()
        }
        None => {
            if s.iter().any(|d| d.value().is_none()) {
                return Err("Squeeze without axes of a symbolic shape".into());
            }
            s.iter().filter(|d| d.value() != Some(1)).cloned().collect()
        }
    };
    let mut g = Fact::tensor(f.elem, Some(out));
    g.value = f.value.clone();
    Ok(vec![g])
}

pub(crate) fn concat(c: &Ctx<'_>) -> Outcome {
    let first = c.input(0)?;
    let s0 = c.shape(0)?;
    let a = axis(c.int("axis", 0), s0.len())?;
    let mut out = s0.to_vec();
    let mut value = Some(Vec::new());
    for i in 0..c.inputs.len() {
        let f = c.input(i)?;
        let s = c.shape(i)?;
        if s.len() != s0.len() {
            return Err(c.invalid(format!(
                "input {i} has rank {}, input 0 {}",
                s.len(),
                s0.len()
            )));
        }
        let clash = (0..s.len()).find(|&j| {
            j != a && matches!((s[j].value(), s0[j].value()), (Some(p), Some(q)) if p != q)
        });
        if let Some(j) = clash {
            return Err(c.invalid(format!(
                "input {i} has dim {} on axis {j}, input 0 {}; only the concatenation axis may differ",
                s[j], s0[j]
            )));
        }
        if i > 0 {
            out[a] = out[a].add(&s[a]).ok_or("dimension overflow")?;
        }
        value = match (value, &f.value) {
            (Some(mut v), Some(x)) if s0.len() == 1 => {
                v.extend(x.iter().cloned());
                Some(v)
            }
            _ => None,
        };
    }
    let mut f = Fact::tensor(first.elem, Some(out));
    f.value = value.filter(|v| v.len() <= MAX_VALUE_ELEMS);
    Ok(vec![f])
}

pub(crate) fn reshape(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let target = c
        .input(1)?
        .value
        .clone()
        .ok_or("the shape input's values are not known")?;
    let allow_zero = c.int("allowzero", 0) != 0;
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, d) in target.iter().enumerate() {
        match d.value() {
            Some(0) if !allow_zero => {
                let s = c.shape(0)?;
                out.push(s.get(i).cloned().ok_or("a 0 past the input's rank")?);
            }
            Some(-1) => {
                if infer_at.replace(i).is_some() {
                    return Err("two -1 in the shape".into());
                }
                out.push(Dim::known(-1));
            }
            _ => out.push(d.clone()),
        }
    }
    let total = f.numel();
    let shown = |t: &Dim| {
        let dims: Vec<String> = target.iter().map(ToString::to_string).collect();
        format!("cannot reshape {t} elements into [{}]", dims.join(", "))
    };
    if let Some(i) = infer_at {
        let total = total.ok_or("the rank of input 0 is unknown")?;
        let mut rest = Dim::known(1);
        for (j, d) in out.iter().enumerate() {
            if j != i {
                rest = rest.mul(d).ok_or("dimension overflow")?;
            }
        }
        if let (Some(t), Some(r)) = (total.value(), rest.value())
            && (r == 0 || t % r != 0)
        {
            return Err(c.invalid(shown(&total)));
        }
        out[i] = total.floor_div(&rest).ok_or("a 0 in the shape with a -1")?;
    } else if let Some(t) = total.as_ref().and_then(Dim::value) {
        let n: Option<i64> = out
            .iter()
            .map(Dim::value)
            .try_fold(1i64, |p, d| p.checked_mul(d?));
        // ONNX Runtime loads this one (it fails when run), so it is not a load-time problem.
        if n.is_some_and(|n| n != t) {
            return Err(shown(&Dim::known(t)));
        }
    }
    let mut g = Fact::tensor(f.elem, Some(out));
    g.value = f.value.clone();
    Ok(vec![g])
}

pub(crate) fn flatten(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    let a = c.int("axis", 1);
    let a = if a < 0 { a + s.len() as i64 } else { a };
    if a < 0 || a as usize > s.len() {
        return Err(format!("axis {a} for rank {}", s.len()));
    }
    let prod = |ds: &[Dim]| ds.iter().try_fold(Dim::known(1), |p, d| p.mul(d));
    let (l, r) = s.split_at(a as usize);
    let out = vec![prod(l).ok_or("overflow")?, prod(r).ok_or("overflow")?];
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}

pub(crate) fn expand(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    let target = c
        .input(1)?
        .value
        .clone()
        .ok_or("the shape input's values are not known")?;
    let out = super::basic::broadcast(&[s, &target])?;
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}

/// Slice: starts and ends (inputs from opset 10, attributes before) known as dims, axes and steps
/// as integers. A dim sliced with known bounds gets its size; a symbolic dim taken whole keeps its
/// symbol; `[0, E)` with a symbolic end E (`seq`, from a Shape) gives E, taken to fit the dim (a
/// position table sliced to the sequence length), as a model that runs needs.
pub(crate) fn slice(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let s = c.shape(0)?;
    let dims = |i: usize| -> Result<Vec<Dim>, String> {
        c.input(i)?
            .value
            .clone()
            .ok_or_else(|| format!("input {i}'s values are not known"))
    };
    let known = |v: Vec<i64>| v.into_iter().map(Dim::known).collect::<Vec<_>>();
    let (starts, ends, ax, steps) = if c.opset >= 10 {
        (dims(1)?, dims(2)?, c.const_ints(3)?, c.const_ints(4)?)
    } else {
        let a = |n: &str| c.ints(n).ok_or_else(|| format!("attribute {n} is missing"));
        (known(a("starts")?), known(a("ends")?), c.ints("axes"), None)
    };
    if starts.len() != ends.len() {
        return Err(format!("{} starts and {} ends", starts.len(), ends.len()));
    }
    let ax = ax.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    let mut out = s.to_vec();
    let mut value = f.value.clone().filter(|_| s.len() == 1);
    for (k, &a) in ax.iter().enumerate() {
        let a = axis(a, s.len())?;
        let step = steps.get(k).copied().unwrap_or(1);
        if step == 0 {
            return Err("a step of 0".into());
        }
        let (st, en) = (starts.get(k).ok_or("too few starts")?, &ends[k]);
        match (s[a].value(), st.value(), en.value()) {
            (Some(n), Some(st), Some(en)) => {
                let (lo, hi) = bounds(st, en, step, n);
                let len = if step > 0 {
                    (hi - lo + step - 1).div_euclid(step)
                } else {
                    (lo - hi - step - 1).div_euclid(-step)
                };
                out[a] = Dim::known(len.max(0));
                value = value.map(|v| pick(&v, lo, len.max(0), step));
            }
            (None, Some(0), Some(en)) if step == 1 && en >= i32::MAX as i64 => {}
            (_, Some(0), None) if step == 1 => {
                out[a] = en.clone();
                value = None;
            }
            _ => {
                out[a] = Dim::symbol(&format!("slice({}, {st}, {en}, {step})", s[a]));
                value = None;
            }
        }
    }
    let mut g = Fact::tensor(f.elem, Some(out));
    g.value = value;
    Ok(vec![g])
}

/// Slice's clamped start and end on a dim of size `n`.
fn bounds(st: i64, en: i64, step: i64, n: i64) -> (i64, i64) {
    let adj = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
    if step > 0 {
        (adj(st).clamp(0, n), adj(en).clamp(0, n))
    } else {
        (adj(st).clamp(-1, n - 1), adj(en).clamp(-1, n - 1))
    }
}

fn pick(v: &[Dim], lo: i64, len: i64, step: i64) -> Vec<Dim> {
    (0..len)
        .filter_map(|i| v.get((lo + i * step) as usize).cloned())
        .collect()
}

pub(crate) fn split(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    let a = axis(c.int("axis", 0), s.len())?;
    let n = c.node.outputs().len();
    let sizes: Vec<Dim> = match if c.opset >= 13 {
        c.const_ints(1)?
    } else {
        c.ints("split")
    } {
        Some(v) => v.into_iter().map(Dim::known).collect(),
        None => {
            let parts = Dim::known(n as i64);
            let each = s[a].floor_div(&parts).ok_or("split into 0")?;
            vec![each; n]
        }
    };
    Ok(sizes
        .into_iter()
        .map(|d| {
            let mut out = s.to_vec();
            out[a] = d;
            Fact::tensor(c.input(0).ok().and_then(|f| f.elem), Some(out))
        })
        .collect())
}

pub(crate) fn range(c: &Ctx<'_>) -> Outcome {
    let e = c.input(0)?.elem;
    let v = |i| {
        c.input(i)
            .ok()
            .and_then(|f| f.value.as_ref()?.first().cloned())
    };
    let len = match (v(0), v(1), v(2).and_then(|d| d.value())) {
        (Some(start), Some(limit), Some(1)) => limit
            .sub(&start)
            .map(|d| d.value().map_or(d.clone(), |x| Dim::known(x.max(0)))),
        (Some(start), Some(limit), Some(delta)) => match (start.value(), limit.value()) {
            (Some(a), Some(b)) if delta != 0 => Some(Dim::known(
                ((b - a) as f64 / delta as f64).ceil().max(0.0) as i64,
            )),
            _ => None,
        },
        _ => None,
    };
    let len = len.ok_or("Range bounds are not known")?;
    Ok(vec![Fact::tensor(e, Some(vec![len]))])
}
