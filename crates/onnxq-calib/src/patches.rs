//! The patches a Conv's kernel reads, as rows for its input Hessian (GPTQ rounding of static
//! Conv weights): for each sample, group and output position, the row holds the group's input
//! channels × kernel offsets in the order of the weight `[O, C/group, kH, kW]` flattened per
//! output channel, zeros where the kernel reads padding. 1-D Convs are 2-D with a kernel height of 1.

/// A Conv's geometry (ONNX attributes; `auto_pad` resolved to explicit pads by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patches {
    /// `group`.
    pub group: usize,
    /// `kernel_shape` (1 or 2 spatial dimensions).
    pub kernel: Vec<usize>,
    /// `strides`, one per spatial dimension.
    pub strides: Vec<usize>,
    /// `pads`: the begins, then the ends.
    pub pads: Vec<usize>,
    /// `dilations`, one per spatial dimension.
    pub dilations: Vec<usize>,
}

/// One spatial dimension of the geometry.
#[derive(Clone, Copy)]
struct Axis {
    size: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    out: usize,
}

impl Patches {
    /// Calls `f(group, rows)` with the `[positions, K]` row-major patch rows of every sample and
    /// group of the input `x` of shape `dims` (`[N, C, spatial...]`).
    pub fn each_group(
        &self,
        dims: &[usize],
        x: &[f32],
        mut f: impl FnMut(usize, &[f32]),
    ) -> Result<(), String> {
        let rank = self.kernel.len();
        if !(1..=2).contains(&rank) || dims.len() != rank + 2 {
            return Err(format!(
                "shape {dims:?} does not fit a kernel of {rank} spatial dimension(s) (GPTQ \
                 rounding handles 1-D and 2-D Convs)"
            ));
        }
        let (n, c) = (dims[0], dims[1]);
        if self.group == 0 || !c.is_multiple_of(self.group) {
            return Err(format!(
                "{c} channels do not split into {} groups",
                self.group
            ));
        }
        let axes = self.axes(&dims[2..])?;
        let [h, w] = axes;
        let cpg = c / self.group;
        let k = cpg * h.kernel * w.kernel;
        let plane = h.size * w.size;
        let mut rows = vec![0f32; h.out * w.out * k];
        for s in 0..n {
            for g in 0..self.group {
                rows.fill(0.0);
                for (p, row) in rows.chunks_mut(k).enumerate() {
                    let (oy, ox) = (p / w.out, p % w.out);
                    for ci in 0..cpg {
                        let base = (s * c + g * cpg + ci) * plane;
                        for ky in 0..h.kernel {
                            let Some(iy) = h.input(oy, ky) else { continue };
                            for kx in 0..w.kernel {
                                if let Some(ix) = w.input(ox, kx) {
                                    row[(ci * h.kernel + ky) * w.kernel + kx] =
                                        x[base + iy * w.size + ix];
                                }
                            }
                        }
                    }
                }
                f(g, &rows);
            }
        }
        Ok(())
    }

    /// The two spatial axes (height first; a 1-D Conv's height is a single row).
    fn axes(&self, spatial: &[usize]) -> Result<[Axis; 2], String> {
        let rank = self.kernel.len();
        let one = |i: usize| -> Result<Axis, String> {
            let (size, kernel) = (spatial[i], self.kernel[i]);
            let (stride, dilation) = (self.strides[i], self.dilations[i]);
            let (pad, end) = (self.pads[i], self.pads[rank + i]);
            let span = dilation * (kernel.max(1) - 1) + 1;
            if stride == 0 || size + pad + end < span {
                return Err(format!(
                    "a kernel spanning {span} with stride {stride} does not fit size {size}"
                ));
            }
            let out = (size + pad + end - span) / stride + 1;
            Ok(Axis {
                size,
                kernel,
                stride,
                pad,
                dilation,
                out,
            })
        };
        if [&self.strides, &self.dilations]
            .iter()
            .any(|v| v.len() != rank)
            || self.pads.len() != 2 * rank
        {
            return Err("strides, dilations and pads do not match the kernel's rank".into());
        }
        let flat = Axis {
            size: 1,
            kernel: 1,
            stride: 1,
            pad: 0,
            dilation: 1,
            out: 1,
        };
        Ok(if rank == 1 {
            [flat, one(0)?]
        } else {
            [one(0)?, one(1)?]
        })
    }
}

impl Axis {
    /// The input index output `o` reads at kernel offset `k`, or `None` in the padding.
    fn input(&self, o: usize, k: usize) -> Option<usize> {
        (o * self.stride + k * self.dilation)
            .checked_sub(self.pad)
            .filter(|&i| i < self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each patch row times the flattened kernel is the Conv's output (a direct convolution of a
    /// 2-channel, 2-group input with stride 2, pads and dilation).
    #[test]
    fn rows_times_the_kernel_are_the_convolution() {
        let p = Patches {
            group: 2,
            kernel: vec![2, 3],
            strides: vec![2, 1],
            pads: vec![1, 0, 0, 2],
            dilations: vec![1, 2],
        };
        let (n, c, h, w) = (2, 4, 5, 6);
        let x: Vec<f32> = (0..n * c * h * w)
            .map(|i| ((i * 37) % 11) as f32 - 5.0)
            .collect();
        let kern: Vec<f32> = (0..2 * 6).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let mut got = Vec::new();
        p.each_group(&[n, c, h, w], &x, |_, rows| {
            for r in rows.chunks(12) {
                got.push(r.iter().zip(&kern).map(|(a, b)| a * b).sum::<f32>());
            }
        })
        .unwrap();
        // Direct: out = (5 + 1 - 2) / 2 + 1 = 3 rows, (6 + 2 - 5) + 1 = 4 columns.
        let mut want = Vec::new();
        for s in 0..n {
            for g in 0..2 {
                for oy in 0..3usize {
                    for ox in 0..4usize {
                        let mut acc = 0.0;
                        for ci in 0..2 {
                            for ky in 0..2 {
                                for kx in 0..3 {
                                    let (iy, ix) = ((oy * 2 + ky) as i64 - 1, (ox + kx * 2) as i64);
                                    if (0..h as i64).contains(&iy) && (0..w as i64).contains(&ix) {
                                        let xi = ((s * c + g * 2 + ci) * h + iy as usize) * w
                                            + ix as usize;
                                        acc += x[xi] * kern[(ci * 2 + ky) * 3 + kx];
                                    }
                                }
                            }
                        }
                        want.push(acc);
                    }
                }
            }
        }
        assert_eq!(got, want);
    }

    /// A kernel wider than the padded input is an error, not a panic.
    #[test]
    fn a_kernel_that_does_not_fit_is_an_error() {
        let p = Patches {
            group: 1,
            kernel: vec![5],
            strides: vec![1],
            pads: vec![0, 0],
            dilations: vec![1],
        };
        assert!(p.each_group(&[1, 1, 3], &[0.0; 3], |_, _| {}).is_err());
    }
}
