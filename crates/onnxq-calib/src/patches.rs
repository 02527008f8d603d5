//! The patches a Conv's kernel reads, as rows for its input Hessian (GPTQ rounding of static
//! Conv weights), built one group at a time so groups can be summed in parallel: for each sample
//! and output position, group g's row holds its input channels × kernel offsets in the order of
//! the weight `[O, C/group, kH, kW]` flattened per output channel, zeros where the kernel reads
//! padding. 1-D Convs are 2-D with a kernel height of 1.

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
    /// Checks that an input of shape `dims` (`[N, C, spatial...]`) fits the geometry.
    pub fn check(&self, dims: &[usize]) -> Result<(), String> {
        let rank = self.kernel.len();
        if !(1..=2).contains(&rank) || dims.len() != rank + 2 {
            return Err(format!(
                "shape {dims:?} does not fit a kernel of {rank} spatial dimension(s) (GPTQ \
                 rounding handles 1-D and 2-D Convs)"
            ));
        }
        if self.group == 0 || !dims[1].is_multiple_of(self.group) {
            return Err(format!(
                "{} channels do not split into {} groups",
                dims[1], self.group
            ));
        }
        self.axes(&dims[2..]).map(|_| ())
    }

    /// The `[positions, K]` row-major patch rows of group `g` over every sample of the input `x`
    /// of shape `dims`, into `rows` (cleared first). `dims` must pass [`Patches::check`].
    pub fn group_rows(&self, dims: &[usize], x: &[f32], g: usize, rows: &mut Vec<f32>) {
        let Ok([h, w]) = self.axes(&dims[2..]) else {
            rows.clear();
            return;
        };
        let (n, c) = (dims[0], dims[1]);
        let cpg = c / self.group;
        let k = cpg * h.kernel * w.kernel;
        let plane = h.size * w.size;
        let per_sample = h.out * w.out * k;
        rows.clear();
        rows.resize(n * per_sample, 0.0);
        for (s, sample) in rows.chunks_mut(per_sample.max(1)).enumerate().take(n) {
            for (p, row) in sample.chunks_mut(k.max(1)).enumerate() {
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
        }
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
        let dims = [n, c, h, w];
        p.check(&dims).unwrap();
        // Per group, every sample's rows: reorder to sample-major for the direct loop below.
        let mut per_group = Vec::new();
        for g in 0..2 {
            let mut rows = Vec::new();
            p.group_rows(&dims, &x, g, &mut rows);
            let out: Vec<f32> = rows
                .chunks(12)
                .map(|r| r.iter().zip(&kern).map(|(a, b)| a * b).sum::<f32>())
                .collect();
            per_group.push(out);
        }
        let mut got = Vec::new();
        for s in 0..n {
            for out in &per_group {
                got.extend_from_slice(&out[s * 12..(s + 1) * 12]);
            }
        }
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
        assert!(p.check(&[1, 1, 3]).is_err());
    }
}
