//! Structural ops of the evaluator, which move elements without computing on them: Reshape,
//! Flatten, Squeeze/Unsqueeze, Transpose, Concat, Split, Gather, Slice, Expand, Tile, and the
//! makers Shape, Size, ConstantOfShape and Range. Each follows the ONNX operator spec for the
//! opsets 10-21 forms (axes as attribute before opset 13, as input after), and declines
//! (`None`) anything it cannot do exactly, such as an output over [`MAX_ELEMS`].

use super::value::{Data, MAX_ELEMS, Val, axis, broadcast, broadcast_index, strides};

/// The output dims of `Reshape(x, shape)` (`0` copies the input dim unless `allowzero`, one
/// `-1` is inferred).
pub(crate) fn reshape(x: &Val, shape: &[i64], allowzero: bool) -> Option<Val> {
    let mut dims: Vec<usize> = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            0 if !allowzero => dims.push(*x.dims.get(i)?),
            s if s >= 0 => dims.push(s as usize),
            _ => return None,
        }
    }
    if let Some(i) = infer {
        let known: usize = dims.iter().product();
        if known == 0 || !x.len().is_multiple_of(known) {
            return None;
        }
        dims[i] = x.len() / known;
    }
    Val::new(dims, x.data.clone())
}

/// `Flatten` at `axis`.
pub(crate) fn flatten(x: &Val, a: i64) -> Option<Val> {
    let r = x.dims.len();
    let a = if a == r as i64 { r } else { axis(a, r)? };
    let outer = x.dims[..a].iter().product();
    Val::new(vec![outer, x.dims[a..].iter().product()], x.data.clone())
}

/// `Unsqueeze` with `axes` of the output rank.
pub(crate) fn unsqueeze(x: &Val, axes: &[i64]) -> Option<Val> {
    let rank = x.dims.len() + axes.len();
    let mut at: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<Option<_>>()?;
    at.sort_unstable();
    at.dedup();
    if at.len() != axes.len() {
        return None;
    }
    let mut src = x.dims.iter();
    let dims = (0..rank)
        .map(|i| {
            if at.contains(&i) {
                Some(1)
            } else {
                src.next().copied()
            }
        })
        .collect::<Option<_>>()?;
    Val::new(dims, x.data.clone())
}

/// `Squeeze` of `axes` (all size-1 dims when absent).
pub(crate) fn squeeze(x: &Val, axes: Option<&[i64]>) -> Option<Val> {
    let r = x.dims.len();
    let drop: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&a| axis(a, r)).collect::<Option<_>>()?,
        None => (0..r).filter(|&i| x.dims[i] == 1).collect(),
    };
    if drop.iter().any(|&i| x.dims[i] != 1) {
        return None;
    }
    let dims = (0..r).filter(|i| !drop.contains(i)).map(|i| x.dims[i]);
    Val::new(dims.collect(), x.data.clone())
}

/// `Transpose` by `perm` (reversed dims when absent).
pub(crate) fn transpose(x: &Val, perm: Option<&[i64]>) -> Option<Val> {
    let r = x.dims.len();
    let perm: Vec<usize> = match perm {
        Some(p) => p.iter().map(|&a| axis(a, r)).collect::<Option<_>>()?,
        None => (0..r).rev().collect(),
    };
    let mut seen = perm.clone();
    seen.sort_unstable();
    if seen != (0..r).collect::<Vec<_>>() {
        return None;
    }
    let dims: Vec<usize> = perm.iter().map(|&p| x.dims[p]).collect();
    let src = strides(&x.dims);
    let idx = gather_index(&dims, |coord| {
        coord.iter().zip(&perm).map(|(c, &p)| c * src[p]).sum()
    });
    Val::new(dims, x.data.pick(&idx))
}

/// For each element of a tensor of shape `dims` (row-major), `f` of its coordinates.
fn gather_index(dims: &[usize], f: impl Fn(&[usize]) -> usize) -> Vec<usize> {
    let n: usize = dims.iter().product();
    let mut coord = vec![0usize; dims.len()];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(f(&coord));
        for d in (0..dims.len()).rev() {
            coord[d] += 1;
            if coord[d] < dims[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    out
}

/// `Concat` along `axis`.
pub(crate) fn concat(xs: &[&Val], a: i64) -> Option<Val> {
    let first = xs.first()?;
    let r = first.dims.len();
    let a = axis(a, r)?;
    let same = |v: &Val| {
        v.dims.len() == r
            && v.data.elem() == first.data.elem()
            && (0..r).all(|i| i == a || v.dims[i] == first.dims[i])
    };
    if !xs.iter().all(|v| same(v)) {
        return None;
    }
    let mut dims = first.dims.clone();
    dims[a] = xs.iter().map(|v| v.dims[a]).sum();
    // Row-major: each input contributes a run of `dims[a] * inner` per outer index.
    let outer: usize = first.dims[..a].iter().product();
    let inner: usize = first.dims[a + 1..].iter().product();
    let mut parts: Vec<Data> = Vec::with_capacity(outer * xs.len());
    for o in 0..outer {
        for v in xs {
            let run = v.dims[a] * inner;
            parts.push(v.data.pick(&(o * run..(o + 1) * run).collect::<Vec<_>>()));
        }
    }
    Val::new(dims, join(parts, first.data.elem())?)
}

/// The parts, of one type, one after another.
fn join(parts: Vec<Data>, elem: i32) -> Option<Data> {
    macro_rules! cat {
        ($v:ident) => {{
            let mut out = Vec::new();
            for p in parts {
                let Data::$v(x) = p else { return None };
                out.extend(x);
            }
            Data::$v(out)
        }};
    }
    Some(match elem {
        1 => cat!(F32),
        11 => cat!(F64),
        7 => cat!(I64),
        6 => cat!(I32),
        9 => cat!(Bool),
        _ => return None,
    })
}

/// `Split` along `axis` into `sizes`.
pub(crate) fn split(x: &Val, a: i64, sizes: &[usize]) -> Option<Vec<Val>> {
    let a = axis(a, x.dims.len())?;
    if sizes.iter().sum::<usize>() != x.dims[a] {
        return None;
    }
    let mut start = 0;
    let mut out = Vec::new();
    for &s in sizes {
        let (starts, ends) = (vec![start as i64], vec![(start + s) as i64]);
        out.push(slice(x, &starts, &ends, &[a as i64], &[1])?);
        start += s;
    }
    Some(out)
}

/// `Gather` of `indices` along `axis` (negative indices count from the end).
pub(crate) fn gather(x: &Val, indices: &Val, a: i64) -> Option<Val> {
    let a = axis(a, x.dims.len())?;
    let n = x.dims[a] as i64;
    let idx: Vec<usize> = (indices.data.ints()?.iter())
        .map(|&i| {
            let i = if i < 0 { i + n } else { i };
            (0..n).contains(&i).then_some(i as usize)
        })
        .collect::<Option<_>>()?;
    let dims: Vec<usize> = (x.dims[..a].iter())
        .chain(&indices.dims)
        .chain(&x.dims[a + 1..])
        .copied()
        .collect();
    if dims.iter().product::<usize>() > MAX_ELEMS {
        return None;
    }
    let src = strides(&x.dims);
    let k = indices.dims.len();
    let pos = gather_index(&dims, |c| {
        let flat_index = (0..k).fold(0, |acc, j| acc * indices.dims[j] + c[a + j]);
        let outer: usize = (0..a).map(|i| c[i] * src[i]).sum();
        let inner: usize = (a + 1..x.dims.len()).map(|i| c[i + k - 1] * src[i]).sum();
        outer + idx[flat_index] * src[a] + inner
    });
    Val::new(dims, x.data.pick(&pos))
}

/// `Slice` with per-axis `starts`, `ends`, `axes` and `steps` (clamped as the spec says).
pub(crate) fn slice(
    x: &Val,
    starts: &[i64],
    ends: &[i64],
    axes: &[i64],
    steps: &[i64],
) -> Option<Val> {
    let r = x.dims.len();
    let mut begin = vec![0i64; r];
    let mut step = vec![1i64; r];
    let mut dims = x.dims.clone();
    for (k, &ax) in axes.iter().enumerate() {
        let i = axis(ax, r)?;
        let d = x.dims[i] as i64;
        let s = *steps.get(k)?;
        if s == 0 {
            return None;
        }
        let fix = |v: i64, lo: i64, hi: i64| (if v < 0 { v + d } else { v }).clamp(lo, hi);
        let (b, e) = if s > 0 {
            (fix(*starts.get(k)?, 0, d), fix(*ends.get(k)?, 0, d))
        } else {
            (
                fix(*starts.get(k)?, 0, d - 1),
                fix(*ends.get(k)?, -1, d - 1),
            )
        };
        let n = if s > 0 {
            (e - b + s - 1) / s
        } else {
            (b - e - s - 1) / -s
        };
        begin[i] = b;
        step[i] = s;
        dims[i] = n.max(0) as usize;
    }
    let src = strides(&x.dims);
    let pos = gather_index(&dims, |c| {
        (0..r)
            .map(|i| (begin[i] + c[i] as i64 * step[i]) as usize * src[i])
            .sum()
    });
    Val::new(dims, x.data.pick(&pos))
}

/// `Expand` to `shape` (numpy broadcast of the two).
pub(crate) fn expand(x: &Val, shape: &[i64]) -> Option<Val> {
    let target: Vec<usize> = (shape.iter())
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let out = broadcast(&x.dims, &target)?;
    if out.iter().product::<usize>() > MAX_ELEMS {
        return None;
    }
    let idx = broadcast_index(&x.dims, &out);
    Val::new(out, x.data.pick(&idx))
}

/// `Tile` by `repeats`.
pub(crate) fn tile(x: &Val, repeats: &[i64]) -> Option<Val> {
    if repeats.len() != x.dims.len() || repeats.iter().any(|&r| r < 0) {
        return None;
    }
    let dims: Vec<usize> = (x.dims.iter().zip(repeats))
        .map(|(&d, &r)| d * r as usize)
        .collect();
    if dims.iter().product::<usize>() > MAX_ELEMS {
        return None;
    }
    let src = strides(&x.dims);
    let pos = gather_index(&dims, |c| {
        (0..c.len()).map(|i| (c[i] % x.dims[i]) * src[i]).sum()
    });
    Val::new(dims, x.data.pick(&pos))
}

/// `ConstantOfShape(shape)` filled with `fill` (one element; float32 zero by default).
pub(crate) fn constant_of_shape(shape: &[i64], fill: Option<Val>) -> Option<Val> {
    let dims: Vec<usize> = (shape.iter())
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let n: usize = dims.iter().product();
    if n > MAX_ELEMS {
        return None;
    }
    let fill = fill.map_or(Data::F32(vec![0.0]), |v| v.data);
    Val::new(dims, fill.repeat_first(n)?)
}

/// `Shape` of `x` with opset-15 `start`/`end`.
pub(crate) fn shape(x: &Val, start: i64, end: Option<i64>) -> Option<Val> {
    let r = x.dims.len() as i64;
    let fix = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (fix(start), fix(end.unwrap_or(r)));
    let dims: Vec<i64> = x.dims[s..e.max(s)].iter().map(|&d| d as i64).collect();
    Val::i64s(vec![dims.len()], dims)
}

/// `Range(start, limit, delta)` of integer scalars.
pub(crate) fn range(start: &Val, limit: &Val, delta: &Val) -> Option<Val> {
    match (&start.data, &limit.data, &delta.data) {
        (Data::I64(s), Data::I64(l), Data::I64(d)) => {
            let (s, l, d) = (*s.first()?, *l.first()?, *d.first()?);
            let n = count(l.checked_sub(s)? as f64, d as f64)?;
            let v: Vec<i64> = (0..n as i64).map(|i| s + i * d).collect();
            Val::new(vec![n], Data::I64(v))
        }
        (Data::I32(s), Data::I32(l), Data::I32(d)) => {
            let (s, l, d) = (*s.first()?, *l.first()?, *d.first()?);
            let n = count(f64::from(l) - f64::from(s), f64::from(d))?;
            let v: Vec<i32> = (0..n as i32).map(|i| s + i * d).collect();
            Val::new(vec![n], Data::I32(v))
        }
        // Float ranges are left to the model: ORT accumulates `+= delta` where the spec
        // multiplies, and the two round differently.
        _ => None,
    }
}

/// `max(ceil(span / delta), 0)` elements, within [`MAX_ELEMS`].
fn count(span: f64, delta: f64) -> Option<usize> {
    if delta == 0.0 {
        return None;
    }
    let n = (span / delta).ceil().max(0.0);
    (n <= MAX_ELEMS as f64).then_some(n as usize)
}
