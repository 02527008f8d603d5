//! Rules for the convolution and pooling ops: output spatial dims from the input's, the kernel,
//! strides, dilations and padding (explicit `pads` or `auto_pad`), symbolic where the input's are.

use super::{Ctx, Outcome};
use crate::dim::Dim;
use crate::fact::{Fact, elem};

/// The window settings of a conv or pool node over `spatial` dims.
struct Window {
    kernel: Vec<i64>,
    strides: Vec<i64>,
    dilations: Vec<i64>,
    pads: Vec<i64>,
    auto_pad: String,
    ceil: bool,
}

impl Window {
    fn of(c: &Ctx<'_>, kernel: Vec<i64>) -> Result<Window, String> {
        let n = kernel.len();
        let list = |name: &str, default: i64, len: usize| -> Result<Vec<i64>, String> {
            let v = c.ints(name).unwrap_or_else(|| vec![default; len]);
            if v.len() != len {
                return Err(format!(
                    "{name} has {} values for {n} spatial dims",
                    v.len()
                ));
            }
            Ok(v)
        };
        let auto_pad = c
            .attr("auto_pad")
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_else(|| "NOTSET".into());
        Ok(Window {
            strides: list("strides", 1, n)?,
            dilations: list("dilations", 1, n)?,
            pads: list("pads", 0, 2 * n)?,
            kernel,
            auto_pad,
            ceil: c.int("ceil_mode", 0) != 0,
        })
    }

    /// Output size of spatial dim `i` of size `d`.
    fn out(&self, i: usize, d: &Dim) -> Result<Dim, String> {
        let n = self.kernel.len();
        let (k, s, dil) = (self.kernel[i], self.strides[i], self.dilations[i]);
        if s <= 0 {
            return Err(format!("stride {s}"));
        }
        let span = dil * (k - 1) + 1;
        let stride = Dim::known(s);
        let ovf = || "dimension overflow".to_owned();
        match self.auto_pad.as_str() {
            // ceil(d / s)
            "SAME_UPPER" | "SAME_LOWER" => d
                .add(&Dim::known(s - 1))
                .and_then(|x| x.floor_div(&stride))
                .ok_or_else(ovf),
            "VALID" | "NOTSET" => {
                let pad = if self.auto_pad == "VALID" {
                    0
                } else {
                    self.pads[i] + self.pads[i + n]
                };
                let mut num = d.add(&Dim::known(pad - span)).ok_or_else(ovf)?;
                if self.ceil {
                    num = num.add(&Dim::known(s - 1)).ok_or_else(ovf)?;
                }
                num.floor_div(&stride)
                    .and_then(|q| q.add(&Dim::known(1)))
                    .ok_or_else(ovf)
            }
            other => Err(format!("auto_pad {other}")),
        }
    }
}

/// The kernel's spatial size: `kernel_shape`, else the weight's dims after the first two.
fn kernel_of(c: &Ctx<'_>, w: &[Dim]) -> Result<Vec<i64>, String> {
    match c.ints("kernel_shape") {
        Some(k) => Ok(k),
        None => (w[2..].iter())
            .map(Dim::value)
            .collect::<Option<_>>()
            .ok_or_else(|| "the weight's spatial dims are not known".into()),
    }
}

/// A conv's input and weight dims: equal ranks, at least one spatial dim.
fn input_and_weight<'a>(c: &Ctx<'a>) -> Result<(&'a [Dim], &'a [Dim]), String> {
    let (x, w) = (c.shape(0)?, c.shape(1)?);
    if x.len() < 3 || w.len() != x.len() {
        return Err(format!(
            "input rank {} and weight rank {}",
            x.len(),
            w.len()
        ));
    }
    Ok((x, w))
}

/// Conv, ConvInteger: `[N, M, spatial...]` with M the weight's first dim.
pub(crate) fn conv(c: &Ctx<'_>) -> Outcome {
    let (x, w) = input_and_weight(c)?;
    let kernel = kernel_of(c, w)?;
    let win = Window::of(c, kernel)?;
    let mut out = vec![x[0].clone(), w[0].clone()];
    for (i, d) in x[2..].iter().enumerate() {
        out.push(win.out(i, d)?);
    }
    let e = if c.node.op_type() == "ConvInteger" {
        Some(elem::INT32)
    } else {
        c.input(0)?.elem
    };
    Ok(vec![Fact::tensor(e, Some(out))])
}

/// ConvTranspose: `output_shape` when given, else `s·(d-1) + output_padding + span - pads`.
pub(crate) fn conv_transpose(c: &Ctx<'_>) -> Outcome {
    let (x, w) = input_and_weight(c)?;
    let group = c.int("group", 1);
    let m = w[1].mul(&Dim::known(group)).ok_or("dimension overflow")?;
    let n = x.len() - 2;
    let mut out = vec![x[0].clone(), m];
    if let Some(shape) = c.ints("output_shape") {
        let tail = &shape[shape.len().saturating_sub(n)..];
        out.extend(tail.iter().map(|&d| Dim::known(d)));
        return Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))]);
    }
    let kernel = kernel_of(c, w)?;
    let win = Window::of(c, kernel)?;
    let opad = c.ints("output_padding").unwrap_or_else(|| vec![0; n]);
    for (i, d) in x[2..].iter().enumerate() {
        let span = win.dilations[i] * (win.kernel[i] - 1) + 1;
        let pads = if win.auto_pad == "NOTSET" {
            win.pads[i] + win.pads[i + n]
        } else {
            0
        };
        let extra = opad.get(i).copied().unwrap_or(0) + span - pads;
        let o = d
            .sub(&Dim::known(1))
            .and_then(|v| v.mul(&Dim::known(win.strides[i])))
            .and_then(|v| v.add(&Dim::known(extra)))
            .ok_or("dimension overflow")?;
        out.push(o);
    }
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}

/// MaxPool, AveragePool, LpPool: the kernel from `kernel_shape`; MaxPool's indices are int64.
pub(crate) fn pool(c: &Ctx<'_>) -> Outcome {
    let x = c.shape(0)?;
    if x.len() < 3 {
        return Err(format!("input rank {}", x.len()));
    }
    let kernel = c.ints("kernel_shape").ok_or("no kernel_shape")?;
    if kernel.len() != x.len() - 2 {
        return Err(format!("kernel_shape {kernel:?} for rank {}", x.len()));
    }
    let win = Window::of(c, kernel)?;
    let mut out = vec![x[0].clone(), x[1].clone()];
    for (i, d) in x[2..].iter().enumerate() {
        out.push(win.out(i, d)?);
    }
    let y = Fact::tensor(c.input(0)?.elem, Some(out.clone()));
    Ok(vec![y, Fact::tensor(Some(elem::INT64), Some(out))])
}

/// GlobalAveragePool, GlobalMaxPool, GlobalLpPool: `[N, C, 1, ...]`.
pub(crate) fn global_pool(c: &Ctx<'_>) -> Outcome {
    let x = c.shape(0)?;
    if x.len() < 2 {
        return Err(format!("input rank {}", x.len()));
    }
    let out: Vec<Dim> = (0..x.len())
        .map(|i| if i < 2 { x[i].clone() } else { Dim::known(1) })
        .collect();
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}
