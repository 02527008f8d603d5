//! Rules for the rest of the standard ops the corpus and ORT's quantization registry use:
//! padding, tiling, resizing, recurrent layers, index ops, and the integer (quantized) ops.

use super::{Ctx, Outcome, axis};
use crate::dim::Dim;
use crate::fact::{Fact, elem};

/// Ops whose output has the first input's type and shape (index scatters, rearrangements that
/// keep the shape).
pub(crate) const LIKE_DATA: &[&str] =
    &["ScatterND", "ScatterElements", "Scatter", "ReverseSequence"];

pub(crate) fn like_data(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    Ok(vec![Fact::tensor(f.elem, f.shape.clone())])
}

/// Pad: each dim grows by its two pads (the `pads` input from opset 11, with optional axes
/// from 18; the attribute before).
pub(crate) fn pad(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    let pads = if c.opset >= 11 {
        c.const_ints(1)?.ok_or("input 1 is missing")?
    } else {
        c.ints("pads").ok_or("attribute pads is missing")?
    };
    let axes: Vec<usize> = match c.const_ints(3)? {
        Some(a) => a
            .iter()
            .map(|&a| axis(a, s.len()))
            .collect::<Result<_, _>>()?,
        None => (0..s.len()).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!("{} pads for {} axes", pads.len(), axes.len()));
    }
    let mut out = s.to_vec();
    for (k, &a) in axes.iter().enumerate() {
        let grow = Dim::known(pads[k] + pads[k + axes.len()]);
        out[a] = out[a].add(&grow).ok_or("dimension overflow")?;
    }
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}

pub(crate) fn tile(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    let reps = c.const_ints(1)?.ok_or("input 1 is missing")?;
    if reps.len() != s.len() {
        return Err(format!("{} repeats for rank {}", reps.len(), s.len()));
    }
    let out = s
        .iter()
        .zip(&reps)
        .map(|(d, &r)| d.mul(&Dim::known(r)).ok_or("dimension overflow"))
        .collect::<Result<_, _>>()?;
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}

/// Resize / Upsample: `sizes` when given, else each dim times its scale (known dims only).
pub(crate) fn resize(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let s = c.shape(0)?;
    let (scales_at, sizes_at) = if c.node.op_type() == "Upsample" {
        (1, usize::MAX)
    } else if c.opset >= 11 {
        (2, 3)
    } else {
        (1, usize::MAX)
    };
    if let Some(sizes) = c.inputs.get(sizes_at).copied().flatten() {
        let v = sizes.value.clone().ok_or("the sizes are not known")?;
        if v.len() == s.len() {
            return Ok(vec![Fact::tensor(f.elem, Some(v))]);
        }
        return Err("sizes with axes".into());
    }
    let scales = c
        .ints_of_floats(scales_at)
        .ok_or("the scales are not known")?;
    if scales.len() != s.len() {
        return Err(format!("{} scales for rank {}", scales.len(), s.len()));
    }
    let out = s
        .iter()
        .zip(&scales)
        .map(|(d, &k)| match d.value() {
            Some(v) => Ok(Dim::known((v as f64 * f64::from(k)).floor() as i64)),
            None if k == 1.0 => Ok(d.clone()),
            None => Err("a symbolic dim scaled"),
        })
        .collect::<Result<_, _>>()?;
    Ok(vec![Fact::tensor(f.elem, Some(out))])
}

/// LSTM, GRU, RNN: Y `[seq, dirs, batch, hidden]` (batch first with `layout = 1`), Y_h and
/// Y_c `[dirs, batch, hidden]`.
pub(crate) fn recurrent(c: &Ctx<'_>) -> Outcome {
    let x = c.shape(0)?;
    if x.len() != 3 {
        return Err(format!("input rank {}", x.len()));
    }
    let hidden = Dim::known(c.int("hidden_size", 0));
    let dirs = Dim::known(match c.attr("direction").and_then(|a| a.s.as_deref()) {
        Some(b"bidirectional") => 2,
        _ => 1,
    });
    let e = c.input(0)?.elem;
    let batch_first = c.int("layout", 0) == 1;
    let (seq, batch) = if batch_first {
        (&x[1], &x[0])
    } else {
        (&x[0], &x[1])
    };
    let y = if batch_first {
        vec![batch.clone(), seq.clone(), dirs.clone(), hidden.clone()]
    } else {
        vec![seq.clone(), dirs.clone(), batch.clone(), hidden.clone()]
    };
    let state = if batch_first {
        vec![batch.clone(), dirs, hidden]
    } else {
        vec![dirs, batch.clone(), hidden]
    };
    let n = c.node.outputs().len();
    let mut out = vec![Fact::tensor(e, Some(y))];
    out.extend((1..n).map(|_| Fact::tensor(e, Some(state.clone()))));
    Ok(out)
}

pub(crate) fn top_k(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    let a = axis(c.int("axis", -1), s.len())?;
    let k = if c.opset >= 10 {
        c.input(1)?.value.as_ref().and_then(|v| v.first().cloned())
    } else {
        Some(Dim::known(c.int("k", 0)))
    };
    let mut out = s.to_vec();
    out[a] = k.ok_or("k is not known")?;
    let values = Fact::tensor(c.input(0)?.elem, Some(out.clone()));
    Ok(vec![values, Fact::tensor(Some(elem::INT64), Some(out))])
}

pub(crate) fn gather_elements(c: &Ctx<'_>) -> Outcome {
    Ok(vec![Fact::tensor(
        c.input(0)?.elem,
        Some(c.shape(1)?.to_vec()),
    )])
}

pub(crate) fn gather_nd(c: &Ctx<'_>) -> Outcome {
    let (d, i) = (c.shape(0)?, c.shape(1)?);
    let b = c.int("batch_dims", 0) as usize;
    let last = i
        .last()
        .and_then(Dim::value)
        .ok_or("the index depth is not known")? as usize;
    if i.is_empty() || b + last > d.len() {
        return Err("index depth past the data's rank".into());
    }
    let out = i[..i.len() - 1]
        .iter()
        .chain(&d[b + last..])
        .cloned()
        .collect();
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}

pub(crate) fn one_hot(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    let depth = c.input(1)?.value.as_ref().and_then(|v| v.first().cloned());
    let rank = s.len() + 1;
    let a = axis(c.int("axis", -1), rank)?;
    let mut out = s.to_vec();
    out.insert(a, depth.ok_or("depth is not known")?);
    Ok(vec![Fact::tensor(c.input(2)?.elem, Some(out))])
}

/// DepthToSpace / SpaceToDepth on `[N, C, H, W]`.
pub(crate) fn depth_space(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    if s.len() != 4 {
        return Err(format!("input rank {}", s.len()));
    }
    let b = c.int("blocksize", 0);
    let (bb, bk) = (Dim::known(b * b), Dim::known(b));
    let ovf = "dimension overflow or a zero block size";
    let out = if c.node.op_type() == "DepthToSpace" {
        vec![
            s[0].clone(),
            s[1].floor_div(&bb).ok_or(ovf)?,
            s[2].mul(&bk).ok_or(ovf)?,
            s[3].mul(&bk).ok_or(ovf)?,
        ]
    } else {
        vec![
            s[0].clone(),
            s[1].mul(&bb).ok_or(ovf)?,
            s[2].floor_div(&bk).ok_or(ovf)?,
            s[3].floor_div(&bk).ok_or(ovf)?,
        ]
    };
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}

/// Ops whose output length is data-dependent: the rank is known, that dim a fresh symbol-like
/// name tied to the node.
pub(crate) fn data_dependent(c: &Ctx<'_>) -> Outcome {
    let name = c.node.name();
    let count = Dim::symbol(&format!("{}_count({name})", c.node.op_type()));
    Ok(match c.node.op_type() {
        "NonZero" => vec![Fact::tensor(
            Some(elem::INT64),
            Some(vec![Dim::known(c.shape(0)?.len() as i64), count]),
        )],
        "NonMaxSuppression" => vec![Fact::tensor(
            Some(elem::INT64),
            Some(vec![count, Dim::known(3)]),
        )],
        // Compress: along `axis`, or flattened without one.
        _ => {
            let s = c.shape(0)?;
            let out = match c.attr("axis").and_then(|a| a.i) {
                Some(a) => {
                    let mut d = s.to_vec();
                    d[axis(a, s.len())?] = count;
                    d
                }
                None => vec![count],
            };
            vec![Fact::tensor(c.input(0)?.elem, Some(out))]
        }
    })
}

/// DynamicQuantizeLinear: uint8 codes of the input's shape, scalar scale and zero point.
pub(crate) fn dynamic_quantize(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    Ok(vec![
        Fact::tensor(Some(2), f.shape.clone()),
        Fact::tensor(Some(elem::FLOAT), Some(Vec::new())),
        Fact::tensor(Some(2), Some(Vec::new())),
    ])
}

/// MatMulInteger (int32) and QLinearMatMul (its zero point's type): MatMul's shape.
pub(crate) fn matmul_integer(c: &Ctx<'_>) -> Outcome {
    let (a, b, e) = if c.node.op_type() == "QLinearMatMul" {
        (0, 3, c.input(7)?.elem)
    } else {
        (0, 1, Some(elem::INT32))
    };
    let shape = super::basic::matmul_shape(c.shape(a)?, c.shape(b)?)?;
    Ok(vec![Fact::tensor(e, Some(shape))])
}

/// Einsum: each input's letters name its dims (`...` the broadcast rest); the output is the
/// explicit term after `->`, or else the `...` dims then the letters used once, alphabetically.
pub(crate) fn einsum(c: &Ctx<'_>) -> Outcome {
    let eq: String = (c.attr("equation").and_then(|a| a.s.as_deref()))
        .map(|s| {
            String::from_utf8_lossy(s)
                .chars()
                .filter(|ch| !ch.is_whitespace())
                .collect()
        })
        .ok_or("no equation")?;
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l.to_owned(), Some(r.to_owned())),
        None => (eq.clone(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != c.inputs.len() {
        return Err(format!(
            "{} terms for {} inputs",
            terms.len(),
            c.inputs.len()
        ));
    }
    let mut letters: Vec<(char, Dim, usize)> = Vec::new();
    let mut ellipsis: Vec<Dim> = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        let s = c.shape(i)?;
        let named = term.chars().filter(char::is_ascii_alphabetic).count();
        let rest = s
            .len()
            .checked_sub(named)
            .ok_or("a term longer than its input's rank")?;
        let (before, after) = term.split_once("...").unwrap_or((term, ""));
        if !term.contains("...") && rest != 0 {
            return Err(format!("term `{term}` for an input of rank {}", s.len()));
        }
        let dims = before
            .chars()
            .zip(s)
            .chain(after.chars().zip(&s[before.len() + rest..]));
        for (ch, d) in dims {
            match letters.iter_mut().find(|(l, ..)| *l == ch) {
                Some((_, known, n)) => {
                    *n += 1;
                    if *known == Dim::known(1) {
                        *known = d.clone();
                    }
                }
                None => letters.push((ch, d.clone(), 1)),
            }
        }
        let mid = &s[before.len()..before.len() + rest];
        ellipsis = super::basic::broadcast(&[&ellipsis, mid])?;
    }
    let dim_of = |ch: char| {
        letters
            .iter()
            .find(|(l, ..)| *l == ch)
            .map(|(_, d, _)| d.clone())
    };
    let out: Vec<Dim> = match rhs {
        Some(r) => {
            let (before, after) = r.split_once("...").unwrap_or((&r, ""));
            let mut out: Vec<Dim> = before
                .chars()
                .map(dim_of)
                .collect::<Option<_>>()
                .ok_or("an output letter no input has")?;
            if r.contains("...") {
                out.extend(ellipsis.iter().cloned());
            }
            out.extend(
                after
                    .chars()
                    .map(dim_of)
                    .collect::<Option<Vec<_>>>()
                    .ok_or("an output letter no input has")?,
            );
            out
        }
        None => {
            let mut once: Vec<(char, Dim)> = (letters.iter())
                .filter(|(_, _, n)| *n == 1)
                .map(|(l, d, _)| (*l, d.clone()))
                .collect();
            once.sort_by_key(|(l, _)| *l);
            ellipsis
                .iter()
                .cloned()
                .chain(once.into_iter().map(|(_, d)| d))
                .collect()
        }
    };
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}
