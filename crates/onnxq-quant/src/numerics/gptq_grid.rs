//! GPTQ on a fixed grid: the static pass's weights keep the scale and zero point their range
//! gives (per channel or per tensor, as ONNX Runtime computes them), and only the integer each
//! value rounds to is chosen by GPTQ (`gptq.rs`: quantize an input row, push its error, weighted
//! by the factor of `H⁻¹`, onto the rows not yet quantized). With fixed grids the act-order
//! permutation is free to use (no group straddles a reordering), so it is always on.
//!
//! Rounding to nearest minimizes each weight's own error; GPTQ minimizes the layer's output error
//! on the calibration inputs, `tr((W-Ŵ)ᵀ H (W-Ŵ))`. They differ most where inputs are strongly
//! correlated: a 3×3 depthwise kernel whose taps nearly cancel (an edge detector folded with
//! batch norm) on smooth images, where nearest rounding changes the kernel's sum by more than
//! the sum itself. Both errors are measured here for the report.

use rayon::prelude::*;

use super::gptq::Prepared;
use super::kernels::quantize_one;
use super::params::QParams;

/// Output columns per parallel task.
const TILE: usize = 64;

/// GPTQ's codes for a weight and what they buy.
#[derive(Debug, Clone)]
pub struct OnGrid {
    /// `[k, n]` row-major, within the type's range.
    pub codes: Vec<i32>,
    /// `tr(Wᵀ H W)`, `tr(EᵀHE)` rounded to nearest and with GPTQ: the layer's output energy on
    /// the calibration inputs and its error each way.
    pub energy: [f64; 3],
}

/// Rounds the `[k, n]` row-major weight `w` (input rows, output columns) with GPTQ against `p`,
/// the prepared Hessian `h` (`[k, k]` row-major, for the report's errors), column `c` on grid
/// `params[c]` (or `params[0]` for every column), codes within `range`.
pub fn gptq_on_grid(
    w: &[f32],
    n: usize,
    params: &[QParams],
    range: (i32, i32),
    p: &Prepared,
    h: &[f64],
) -> Result<OnGrid, String> {
    let k = p.k;
    if w.len() != k * n || h.len() != k * k || !(params.len() == 1 || params.len() == n) {
        return Err(format!(
            "GPTQ rounding: a [{k}, {n}] weight with {} values, {} grids and a Hessian of {}",
            w.len(),
            params.len(),
            h.len()
        ));
    }
    let grid = |c: usize| params[if params.len() == 1 { 0 } else { c }];
    let mut codes = vec![0i32; k * n];
    let tiles: Vec<(usize, Vec<i32>, [f64; 3])> = (0..n.div_ceil(TILE))
        .into_par_iter()
        .map(|t| {
            let (c0, cols) = (t * TILE, TILE.min(n - t * TILE));
            let grids: Vec<QParams> = (c0..c0 + cols).map(grid).collect();
            let tile = solve(w, n, c0, cols, &grids, range, p);
            let energy = errors(w, n, c0, cols, &tile, &grids, range, h, k);
            (c0, tile, energy)
        })
        .collect();
    let mut energy = [0.0; 3];
    for (c0, tile, e) in tiles {
        let cols = tile.len() / k;
        for r in 0..k {
            codes[r * n + c0..r * n + c0 + cols].copy_from_slice(&tile[r * cols..(r + 1) * cols]);
        }
        for (a, b) in energy.iter_mut().zip(e) {
            *a += b;
        }
    }
    Ok(OnGrid { codes, energy })
}

/// GPTQ's codes of columns `c0..c0 + cols`, `[k, cols]` in weight row order.
fn solve(
    w: &[f32],
    n: usize,
    c0: usize,
    cols: usize,
    grids: &[QParams],
    range: (i32, i32),
    p: &Prepared,
) -> Vec<i32> {
    let k = p.k;
    // The working copy in solver order.
    let mut wt = vec![0f64; k * cols];
    for (i, &r) in p.order.iter().enumerate() {
        for c in 0..cols {
            wt[i * cols + c] = f64::from(w[r * n + c0 + c]);
        }
    }
    let mut codes = vec![0i32; k * cols];
    let mut err = vec![0f64; cols];
    for i in 0..k {
        let r = p.order[i];
        let d = p.u[i * k + i];
        for c in 0..cols {
            let g = grids[c];
            if p.dead[r] {
                // An input never active on the data: nearest, and nothing to compensate.
                codes[r * cols + c] = quantize_one(w[r * n + c0 + c], g, range);
                err[c] = 0.0;
                continue;
            }
            let x = wt[i * cols + c];
            let q = quantize_one(x as f32, g, range);
            codes[r * cols + c] = q;
            err[c] = (x - f64::from(g.scale) * f64::from(q - g.zero_point)) / d;
        }
        for j in i + 1..k {
            let uij = p.u[i * k + j];
            if uij != 0.0 {
                let row = &mut wt[j * cols..(j + 1) * cols];
                for (v, e) in row.iter_mut().zip(&err) {
                    *v -= e * uij;
                }
            }
        }
    }
    codes
}

/// `[tr(WᵀHW), tr(EᵀHE) nearest, tr(EᵀHE) GPTQ]` over columns `c0..c0 + cols`.
#[allow(clippy::too_many_arguments)]
fn errors(
    w: &[f32],
    n: usize,
    c0: usize,
    cols: usize,
    codes: &[i32],
    grids: &[QParams],
    range: (i32, i32),
    h: &[f64],
    k: usize,
) -> [f64; 3] {
    let mut out = [0.0; 3];
    let mut v = [vec![0f64; k], vec![0f64; k], vec![0f64; k]];
    for c in 0..cols {
        let g = grids[c];
        let deq = |q: i32| f64::from(g.scale) * f64::from(q - g.zero_point);
        for r in 0..k {
            let x = w[r * n + c0 + c];
            v[0][r] = f64::from(x);
            v[1][r] = f64::from(x) - deq(quantize_one(x, g, range));
            v[2][r] = f64::from(x) - deq(codes[r * cols + c]);
        }
        for (o, v) in out.iter_mut().zip(&v) {
            *o += quadratic(h, v, k);
        }
    }
    out
}

/// `vᵀ H v`.
fn quadratic(h: &[f64], v: &[f64], k: usize) -> f64 {
    (0..k)
        .map(|i| {
            v[i] * h[i * k..(i + 1) * k]
                .iter()
                .zip(v)
                .map(|(a, b)| a * b)
                .sum::<f64>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::super::gptq::{GptqSettings, prepare};
    use super::*;

    fn prepared(h: &[f64], k: usize) -> Prepared {
        let s = GptqSettings {
            percdamp: 0.01,
            act_order: true,
        };
        prepare(h.to_vec(), k, s).unwrap()
    }

    /// With uncorrelated inputs (a diagonal Hessian) there is nothing to compensate: GPTQ's codes
    /// are the nearest ones.
    #[test]
    fn a_diagonal_hessian_gives_the_nearest_codes() {
        let (k, n) = (5, 3);
        let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut h = vec![0.0; k * k];
        for i in 0..k {
            h[i * k + i] = 1.0 + i as f64;
        }
        let g = QParams {
            scale: 0.05,
            zero_point: 0,
        };
        let got = gptq_on_grid(&w, n, &[g], (-127, 127), &prepared(&h, k), &h).unwrap();
        let want: Vec<i32> = w.iter().map(|&x| quantize_one(x, g, (-127, 127))).collect();
        assert_eq!(got.codes, want);
        assert_eq!(got.energy[1], got.energy[2]);
    }

    /// Inputs that move together (a smooth image under a kernel): GPTQ keeps the kernel's sum,
    /// where rounding each tap to nearest (every one down by 0.4 steps) moves it 3.6 steps.
    #[test]
    fn correlated_inputs_lose_less_than_nearest() {
        let k = 9;
        // H of rows x = a·1 + small noise: a rank-one ones·onesᵀ plus a little diagonal.
        let mut h = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                h[i * k + j] = 1.0 + if i == j { 0.01 } else { 0.0 };
            }
        }
        let w: Vec<f32> = (0..k).map(|i| i as f32 - 4.0 + 0.4).collect();
        let g = QParams {
            scale: 1.0,
            zero_point: 0,
        };
        let got = gptq_on_grid(&w, 1, &[g], (-127, 127), &prepared(&h, k), &h).unwrap();
        let [_, nearest, gptq] = got.energy;
        assert!(gptq < nearest / 10.0, "GPTQ {gptq} vs nearest {nearest}");
        assert!(got.codes.iter().all(|q| (-127..=127).contains(q)));
    }
}
