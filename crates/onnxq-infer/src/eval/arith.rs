//! Elementwise ops of the evaluator: unary float maths, numpy-broadcast arithmetic and
//! comparisons, `Where`, `Not`/`And`/`Or`, and `Cast` among the supported types. Float results
//! are computed in the tensor's own precision, element by element, as ONNX Runtime's CPU kernels
//! do; integer arithmetic that would overflow or divide by zero is not folded (`None`), so the
//! model keeps computing it.

use super::value::{Data, MAX_ELEMS, Val, broadcast, broadcast_index};

/// A unary float op by name (`None` for other ops or non-float input).
pub(crate) fn unary(op: &str, x: &Val) -> Option<Val> {
    let f: fn(f64) -> f64 = match op {
        "Neg" => |x| -x,
        "Abs" => f64::abs,
        "Sqrt" => f64::sqrt,
        "Exp" => f64::exp,
        "Log" => f64::ln,
        "Reciprocal" => |x| 1.0 / x,
        "Relu" => |x| x.max(0.0),
        "Sigmoid" => |x| 1.0 / (1.0 + (-x).exp()),
        "Tanh" => f64::tanh,
        "Floor" => f64::floor,
        "Ceil" => f64::ceil,
        _ => return None,
    };
    let data = match &x.data {
        // float32 through f64: one rounding, at most as far from the exact result as ORT's own.
        Data::F32(v) => Data::F32(v.iter().map(|&a| f(f64::from(a)) as f32).collect()),
        Data::F64(v) => Data::F64(v.iter().map(|&a| f(a)).collect()),
        Data::I64(v) if op == "Neg" => Data::I64(checked(v, |a| a.checked_neg())?),
        Data::I64(v) if op == "Abs" => Data::I64(checked(v, |a| a.checked_abs())?),
        _ => return None,
    };
    Val::new(x.dims.clone(), data)
}

fn checked<T: Copy>(v: &[T], f: impl Fn(T) -> Option<T>) -> Option<Vec<T>> {
    v.iter().map(|&a| f(a)).collect()
}

/// The broadcast shape of `a` and `b` and, per output element, the elements of each they read.
fn pair(a: &Val, b: &Val) -> Option<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    let out = broadcast(&a.dims, &b.dims)?;
    if out.iter().product::<usize>() > MAX_ELEMS {
        return None;
    }
    let (ia, ib) = (
        broadcast_index(&a.dims, &out),
        broadcast_index(&b.dims, &out),
    );
    Some((out, ia, ib))
}

/// Applies `f` to the broadcast pairs.
fn zip<T: Copy, U>(x: &[T], y: &[T], ia: &[usize], ib: &[usize], f: impl Fn(T, T) -> U) -> Vec<U> {
    ia.iter().zip(ib).map(|(&i, &j)| f(x[i], y[j])).collect()
}

/// Like [`zip`] for a fallible `f`.
fn try_zip<T: Copy>(
    x: &[T],
    y: &[T],
    ia: &[usize],
    ib: &[usize],
    f: impl Fn(T, T) -> Option<T>,
) -> Option<Vec<T>> {
    ia.iter().zip(ib).map(|(&i, &j)| f(x[i], y[j])).collect()
}

/// A binary arithmetic op (`Add`, `Sub`, `Mul`, `Div`, `Pow`, `Max`, `Min`) with numpy broadcast.
pub(crate) fn binary(op: &str, a: &Val, b: &Val) -> Option<Val> {
    let (out, ia, ib) = pair(a, b)?;
    macro_rules! float {
        ($x:expr, $y:expr, $v:ident) => {
            Data::$v(match op {
                "Add" => zip($x, $y, &ia, &ib, |p, q| p + q),
                "Sub" => zip($x, $y, &ia, &ib, |p, q| p - q),
                "Mul" => zip($x, $y, &ia, &ib, |p, q| p * q),
                "Div" => zip($x, $y, &ia, &ib, |p, q| p / q),
                "Pow" => zip($x, $y, &ia, &ib, |p, q| p.powf(q)),
                "Max" => zip($x, $y, &ia, &ib, |p, q| {
                    if p.is_nan() || q.is_nan() {
                        p + q
                    } else {
                        p.max(q)
                    }
                }),
                "Min" => zip($x, $y, &ia, &ib, |p, q| {
                    if p.is_nan() || q.is_nan() {
                        p + q
                    } else {
                        p.min(q)
                    }
                }),
                _ => return None,
            })
        };
    }
    macro_rules! int {
        ($x:expr, $y:expr, $v:ident) => {
            Data::$v(match op {
                "Add" => try_zip($x, $y, &ia, &ib, |p, q| p.checked_add(q))?,
                "Sub" => try_zip($x, $y, &ia, &ib, |p, q| p.checked_sub(q))?,
                "Mul" => try_zip($x, $y, &ia, &ib, |p, q| p.checked_mul(q))?,
                // C++ integer division truncates toward zero, as Rust's does.
                "Div" => try_zip($x, $y, &ia, &ib, |p, q| p.checked_div(q))?,
                "Max" => zip($x, $y, &ia, &ib, |p, q| p.max(q)),
                "Min" => zip($x, $y, &ia, &ib, |p, q| p.min(q)),
                _ => return None,
            })
        };
    }
    let data = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => float!(x, y, F32),
        (Data::F64(x), Data::F64(y)) => float!(x, y, F64),
        (Data::I64(x), Data::I64(y)) => int!(x, y, I64),
        (Data::I32(x), Data::I32(y)) => int!(x, y, I32),
        _ => return None,
    };
    Val::new(out, data)
}

/// A comparison (`Equal`, `Less`, `Greater`, `LessOrEqual`, `GreaterOrEqual`) or boolean op
/// (`And`, `Or`, `Xor`), with numpy broadcast; the result is bool.
pub(crate) fn compare(op: &str, a: &Val, b: &Val) -> Option<Val> {
    let (out, ia, ib) = pair(a, b)?;
    macro_rules! cmp {
        ($x:expr, $y:expr) => {
            match op {
                "Equal" => zip($x, $y, &ia, &ib, |p, q| p == q),
                "Less" => zip($x, $y, &ia, &ib, |p, q| p < q),
                "Greater" => zip($x, $y, &ia, &ib, |p, q| p > q),
                "LessOrEqual" => zip($x, $y, &ia, &ib, |p, q| p <= q),
                "GreaterOrEqual" => zip($x, $y, &ia, &ib, |p, q| p >= q),
                _ => return None,
            }
        };
    }
    let v = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => cmp!(x, y),
        (Data::F64(x), Data::F64(y)) => cmp!(x, y),
        (Data::I64(x), Data::I64(y)) => cmp!(x, y),
        (Data::I32(x), Data::I32(y)) => cmp!(x, y),
        (Data::Bool(x), Data::Bool(y)) => match op {
            "And" => zip(x, y, &ia, &ib, |p, q| p && q),
            "Or" => zip(x, y, &ia, &ib, |p, q| p || q),
            "Xor" => zip(x, y, &ia, &ib, |p, q| p != q),
            "Equal" => zip(x, y, &ia, &ib, |p, q| p == q),
            _ => return None,
        },
        _ => return None,
    };
    Val::new(out, Data::Bool(v))
}

/// `Not` of a bool tensor.
pub(crate) fn not(x: &Val) -> Option<Val> {
    match &x.data {
        Data::Bool(v) => Val::new(x.dims.clone(), Data::Bool(v.iter().map(|b| !b).collect())),
        _ => None,
    }
}

/// `Where(cond, x, y)` with three-way broadcast.
pub(crate) fn where_(c: &Val, x: &Val, y: &Val) -> Option<Val> {
    let Data::Bool(cv) = &c.data else { return None };
    let out = broadcast(&broadcast(&c.dims, &x.dims)?, &y.dims)?;
    if out.iter().product::<usize>() > MAX_ELEMS || x.data.elem() != y.data.elem() {
        return None;
    }
    let (ic, ix, iy) = (
        broadcast_index(&c.dims, &out),
        broadcast_index(&x.dims, &out),
        broadcast_index(&y.dims, &out),
    );
    let (px, py) = (x.data.pick(&ix), y.data.pick(&iy));
    let data = match (px, py) {
        (Data::F32(a), Data::F32(b)) => Data::F32(select(cv, &ic, a, b)),
        (Data::F64(a), Data::F64(b)) => Data::F64(select(cv, &ic, a, b)),
        (Data::I64(a), Data::I64(b)) => Data::I64(select(cv, &ic, a, b)),
        (Data::I32(a), Data::I32(b)) => Data::I32(select(cv, &ic, a, b)),
        (Data::Bool(a), Data::Bool(b)) => Data::Bool(select(cv, &ic, a, b)),
        _ => return None,
    };
    Val::new(out, data)
}

fn select<T: Copy>(c: &[bool], ic: &[usize], a: Vec<T>, b: Vec<T>) -> Vec<T> {
    (0..a.len())
        .map(|i| if c[ic[i]] { a[i] } else { b[i] })
        .collect()
}

/// `Cast` to `to` (an ONNX element type code) among float32/64, int64/32 and bool. A float that
/// is NaN, infinite or out of the integer range is not folded: the conversion is undefined in
/// C++ and ONNX Runtime's result is whatever the hardware gives.
pub(crate) fn cast(x: &Val, to: i64) -> Option<Val> {
    let as_f64: Vec<f64> = match &x.data {
        Data::F32(v) => v.iter().map(|&a| f64::from(a)).collect(),
        Data::F64(v) => v.clone(),
        Data::I64(v) => v.iter().map(|&a| a as f64).collect(),
        Data::I32(v) => v.iter().map(|&a| f64::from(a)).collect(),
        Data::Bool(v) => v.iter().map(|&b| f64::from(u8::from(b))).collect(),
    };
    let int_ok = |lo: f64, hi: f64| as_f64.iter().all(|a| a.is_finite() && *a >= lo && *a < hi);
    let data = match (to, &x.data) {
        (1, Data::F32(v)) => Data::F32(v.clone()),
        // int64 → float32 rounds once, as a C++ static_cast does.
        (1, Data::I64(v)) => Data::F32(v.iter().map(|&a| a as f32).collect()),
        (1, _) => Data::F32(as_f64.iter().map(|&a| a as f32).collect()),
        (11, Data::I64(v)) => Data::F64(v.iter().map(|&a| a as f64).collect()),
        (11, _) => Data::F64(as_f64),
        (7, Data::I64(v)) => Data::I64(v.clone()),
        (7, Data::I32(v)) => Data::I64(v.iter().map(|&a| i64::from(a)).collect()),
        (7, _) if int_ok(-9.223_372_036_854_776e18, 9.223_372_036_854_776e18) => {
            Data::I64(as_f64.iter().map(|&a| a.trunc() as i64).collect())
        }
        (6, Data::I64(v)) => Data::I32(checked_map(v, |a| i32::try_from(a).ok())?),
        (6, _) if int_ok(-2_147_483_648.0, 2_147_483_648.0) => {
            Data::I32(as_f64.iter().map(|&a| a.trunc() as i32).collect())
        }
        (9, Data::I64(v)) => Data::Bool(v.iter().map(|&a| a != 0).collect()),
        (9, _) if as_f64.iter().all(|a| !a.is_nan()) => {
            Data::Bool(as_f64.iter().map(|&a| a != 0.0).collect())
        }
        _ => return None,
    };
    Val::new(x.dims.clone(), data)
}

fn checked_map<T: Copy, U>(v: &[T], f: impl Fn(T) -> Option<U>) -> Option<Vec<U>> {
    v.iter().map(|&a| f(a)).collect()
}
