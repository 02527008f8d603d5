//! Running error statistics of a signal `x` against its approximation `y`, summed in float64 so
//! they can be fed one sample (or one block of a weight) at a time and never hold the values.

/// Sums over every element pair seen.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    /// Σx².
    pub xx: f64,
    /// Σy².
    pub yy: f64,
    /// Σxy.
    pub xy: f64,
    /// Σ(x−y)².
    pub dd: f64,
    /// Σ|x−y|.
    pub abs: f64,
    /// max |x−y|.
    pub max_abs: f64,
    /// Element pairs seen.
    pub n: u64,
}

/// ONNX Runtime's floor on both norms (numpy's float64 epsilon), so equal tensors give a large
/// finite SQNR instead of infinity, as `compute_signal_to_quantization_noice_ratio` does.
const EPS: f64 = f64::EPSILON;

/// Independent partial sums in [`Sums::add_f32`].
const LANES: usize = 8;

impl Sums {
    /// Adds one pair.
    #[inline]
    pub fn add(&mut self, x: f64, y: f64) {
        let d = x - y;
        self.xx += x * x;
        self.yy += y * y;
        self.xy += x * y;
        self.dd += d * d;
        self.abs += d.abs();
        self.max_abs = self.max_abs.max(d.abs());
        self.n += 1;
    }

    /// Adds two float32 slices of equal length pairwise. Summed in [`LANES`] independent
    /// partial sums (so the loop vectorizes), merged in a fixed order: deterministic.
    pub fn add_f32(&mut self, x: &[f32], y: &[f32]) {
        let mut lanes = [Sums::default(); LANES];
        let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
        let (xr, yr) = (xc.remainder(), yc.remainder());
        for (a, b) in xc.zip(yc) {
            for l in 0..LANES {
                let (p, q) = (f64::from(a[l]), f64::from(b[l]));
                let d = p - q;
                let s = &mut lanes[l];
                s.xx += p * p;
                s.yy += q * q;
                s.xy += p * q;
                s.dd += d * d;
                s.abs += d.abs();
                s.max_abs = s.max_abs.max(d.abs());
            }
        }
        let full = (x.len().min(y.len()) / LANES * LANES) as u64;
        for s in lanes {
            *self = self.merge(s);
        }
        self.n += full;
        for (&a, &b) in xr.iter().zip(yr) {
            self.add(f64::from(a), f64::from(b));
        }
    }

    /// Both sums together (for sums taken in parallel parts).
    pub fn merge(mut self, o: Sums) -> Sums {
        self.xx += o.xx;
        self.yy += o.yy;
        self.xy += o.xy;
        self.dd += o.dd;
        self.abs += o.abs;
        self.max_abs = self.max_abs.max(o.max_abs);
        self.n += o.n;
        self
    }

    /// `20·log10(max(‖x‖, ε) / max(‖x−y‖, ε))`, ONNX Runtime's SQNR.
    pub fn sqnr_db(&self) -> f64 {
        20.0 * (self.xx.sqrt().max(EPS) / self.dd.sqrt().max(EPS)).log10()
    }

    /// Cosine similarity; 1 when both are all zeros, 0 when only one is.
    pub fn cosine(&self) -> f64 {
        if self.xx == 0.0 && self.yy == 0.0 {
            return 1.0;
        }
        let den = (self.xx * self.yy).sqrt();
        if den == 0.0 { 0.0 } else { self.xy / den }
    }

    /// Mean absolute difference (0 with no pairs).
    pub fn mean_abs(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.abs / self.n as f64
        }
    }
}

/// Argmax agreement along the last axis of two outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Top1 {
    /// Rows whose argmax agrees.
    pub same: u64,
    /// Rows compared.
    pub rows: u64,
}

impl Top1 {
    /// Compares rows of `last` elements (the first maximum wins, as numpy's argmax).
    pub fn add(&mut self, x: &[f32], y: &[f32], last: usize) {
        if last < 2 {
            return;
        }
        for (a, b) in x.chunks_exact(last).zip(y.chunks_exact(last)) {
            self.rows += 1;
            if argmax(a) == argmax(b) {
                self.same += 1;
            }
        }
    }

    /// The share of rows that agree, when any were compared.
    pub fn agreement(&self) -> Option<f64> {
        (self.rows > 0).then(|| self.same as f64 / self.rows as f64)
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] || (v[best].is_nan() && !x.is_nan()) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ORT's figures: equal unit-norm tensors give ≈ 313 dB (1/ε), an error of a tenth 20 dB.
    #[test]
    fn sqnr_follows_onnx_runtime() {
        let mut s = Sums::default();
        s.add_f32(&[1.0, 0.0], &[1.0, 0.0]);
        assert!((s.sqnr_db() - 20.0 * (1.0 / f64::EPSILON).log10()).abs() < 1e-9);
        let mut t = Sums::default();
        t.add_f32(&[3.0, 4.0], &[3.0, 4.5]);
        assert!((t.sqnr_db() - 20.0).abs() < 1e-9);
        assert!((t.cosine() - (9.0 + 18.0) / (5.0 * (9.0f64 + 20.25).sqrt())).abs() < 1e-12);
        let mut top = Top1::default();
        top.add(&[0.0, 1.0, 2.0, 1.0], &[0.0, 2.0, 1.0, 3.0], 2);
        assert_eq!(top.agreement(), Some(0.5));
    }
}
