//! GPTQ (Frantar et al.; ONNX Runtime's `GPTQ` algorithm, ort-quantization.md §7.10, there in
//! PyTorch): each row k of a `[K, N]` MatMul weight is quantized in turn and its rounding error,
//! weighted by the inverse of the input Hessian `H = 2/n Σ xᵀx`, is pushed onto the rows not yet
//! quantized, so that `tr((W-Ŵ)ᵀ H (W-Ŵ))`, the output error on the calibration inputs, shrinks.
//!
//! [`prepare`] turns a Hessian into what every weight reading that input shares: dead inputs
//! (`H[i,i] = 0`: never active) get `H[i,i] = 1` and their weight rows are zeroed, the act-order
//! permutation (descending `diag H`), damping `percdamp · mean(diag H)` (raised tenfold up to three
//! times when the factorization fails), and `U`, the upper Cholesky factor of `H⁻¹`. `U` is computed
//! without forming `H⁻¹`: with `J` the order reversal, `JHJ = L'L'ᵀ` gives `U = J L'⁻¹ J` (one
//! Cholesky and one triangular inverse, both faer's, sequential so the bytes do not depend on the
//! thread count).
//!
//! [`gptq`] runs the lazy-batch loop over rows (batches of `max(128, block)` rows, so a quantization
//! block never straddles two batches and its grid is taken from fully updated values) on tiles of
//! output columns in parallel (columns are independent in GPTQ), and writes the codes and the
//! parameters it used straight into MatMulNBits' layout: the returned [`NBits`] is exactly the
//! solver's model. Grids per (block, column) as ORT's: `[min(min,0), max(max,0)]`, asymmetric zero
//! point `round(-xmin/scale)`, symmetric zero point `2^(bits-1)` — with `xmin = -xmax` always (ORT
//! keeps `xmin = 0` for an all-positive block, which clips half its range). The scale is rounded to
//! the weight's type before any code is chosen against it. With act-order the grids are *static*:
//! computed from the unpermuted weight before the loop, one per block of `block` consecutive rows,
//! as MatMulNBits (which has no `g_idx`) needs.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    LltRegularization, cholesky_in_place, cholesky_in_place_scratch,
};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::blocks::{BlockShape, NBits};
use super::elems::{Elems, ScaleType};

/// GPTQ's settings (ORT's names in the comments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GptqSettings {
    /// Damping as a fraction of the mean of `diag H` (`percdamp`, default 0.01).
    pub percdamp: f64,
    /// Quantize rows in order of decreasing `diag H` (`actorder`, default off).
    pub act_order: bool,
}

/// A Hessian ready for the solver, shared by every weight reading the same input.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(super) k: usize,
    /// `[K, K]` row-major, upper triangle: the Cholesky factor of the damped `H⁻¹`, in the
    /// solver's row order.
    pub(super) u: Vec<f64>,
    /// Solver row `i` is weight row `order[i]` (the identity without act-order).
    pub(super) order: Vec<usize>,
    /// Weight rows whose input never held a non-zero value.
    pub(super) dead: Vec<bool>,
    /// Rows in act-order, with static groups.
    act_order: bool,
    /// The damping used, as a fraction of `mean(diag H)`.
    pub percdamp_used: f64,
}

/// Times the damping is raised tenfold after the first factorization fails.
const RETRIES: usize = 3;

/// Prepares the `[k, k]` row-major symmetric Hessian `h` (only its upper triangle is read) for
/// [`gptq`]. Fails with the reason when `h` is not finite or stays indefinite after damping.
pub fn prepare(mut h: Vec<f64>, k: usize, s: GptqSettings) -> Result<Prepared, String> {
    if h.len() != k * k || k == 0 {
        return Err(format!("the Hessian holds {} values for K = {k}", h.len()));
    }
    if let Some(i) = h.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "the Hessian holds {} at ({}, {}): the calibration activations are not finite",
            h[i],
            i / k,
            i % k
        ));
    }
    // Symmetric from the upper triangle: the collection may fill only that.
    for i in 0..k {
        for j in 0..i {
            h[i * k + j] = h[j * k + i];
        }
    }
    let dead: Vec<bool> = (0..k).map(|i| h[i * k + i] == 0.0).collect();
    for (i, _) in dead.iter().enumerate().filter(|(_, d)| **d) {
        h[i * k + i] = 1.0;
    }
    let mut order: Vec<usize> = (0..k).collect();
    if s.act_order {
        // Stable, so equal diagonals keep their index order: the output is deterministic.
        order.sort_by(|&a, &b| h[b * k + b].total_cmp(&h[a * k + a]));
    }
    // The reversed, permuted Hessian: a[i][j] = H[order[k-1-i]][order[k-1-j]] (+ damping), rebuilt
    // from `h` for each attempt (a failed factorization leaves `a` half overwritten).
    let rev: Vec<usize> = order.iter().rev().copied().collect();
    let mean = (0..k).map(|i| h[i * k + i]).sum::<f64>() / k as f64;
    let mut a = vec![0f64; k * k];
    let par = Par::Seq;
    let mut buf = MemBuffer::new(cholesky_in_place_scratch::<f64>(k, par, Default::default()));
    let mut percdamp = s.percdamp;
    let mut attempt = 0;
    loop {
        let damp = percdamp * mean;
        for (i, &ri) in rev.iter().enumerate() {
            for (j, &rj) in rev.iter().enumerate() {
                a[i * k + j] = h[ri * k + rj];
            }
            a[i * k + i] += damp;
        }
        // Row-major symmetric = column-major symmetric: faer factors the lower triangle.
        let m = MatMut::from_column_major_slice_mut(&mut a, k, k);
        let ok = cholesky_in_place(
            m,
            LltRegularization::default(),
            par,
            MemStack::new(&mut buf),
            Default::default(),
        );
        if ok.is_ok() {
            break;
        }
        if attempt == RETRIES {
            return Err(format!(
                "the Hessian is not positive definite even with damping {percdamp} × mean(diag H) \
                 ({RETRIES} retries)"
            ));
        }
        attempt += 1;
        percdamp *= 10.0;
    }
    drop(h);
    drop(buf);
    // L'⁻¹ (column-major, lower), then U = J L'⁻¹ J: reversing the flat array maps (i, j) to
    // (k-1-i, k-1-j), which gives U column-major; transposed in place to row-major.
    let mut inv = vec![0f64; k * k];
    {
        let l = MatRef::from_column_major_slice(&a, k, k);
        let dst = MatMut::from_column_major_slice_mut(&mut inv, k, k);
        invert_lower_triangular(dst, l, par);
    }
    drop(a);
    inv.reverse();
    for i in 0..k {
        for j in 0..i {
            inv.swap(i * k + j, j * k + i);
        }
    }
    // Only the upper triangle is meaningful; the solver never reads below the diagonal.
    if let Some(i) = (0..k).find(|&i| !(inv[i * k + i].is_finite() && inv[i * k + i] > 0.0)) {
        return Err(format!(
            "the inverse Hessian's factor has {} on its diagonal at row {i}",
            inv[i * k + i]
        ));
    }
    Ok(Prepared {
        k,
        u: inv,
        order,
        dead,
        act_order: s.act_order,
        percdamp_used: percdamp,
    })
}

/// Output columns per parallel task: the tile's `[K, TILE]` float64 copy is all the solver holds
/// of a weight (64 MB at K = 8192 with 1024).
const TILE: usize = 1024;

/// Rows per lazy batch at least (GPTQ's `blocksize`).
const LAZY: usize = 128;

/// One block's grid for one column: the stored scale, its zero point.
#[derive(Debug, Clone, Copy)]
struct Grid {
    scale: f64,
    zero: f64,
}

/// ORT's grid of values spanning `[lo, hi]`, its scale rounded to the stored type.
fn grid(lo: f64, hi: f64, s: &BlockShape, st: ScaleType) -> Grid {
    let maxq = f64::from((1u32 << s.bits) - 1);
    let (mut xmin, mut xmax) = (lo.min(0.0), hi.max(0.0));
    if s.symmetric {
        xmax = xmax.max(xmin.abs());
        xmin = -xmax;
    }
    if xmin == 0.0 && xmax == 0.0 {
        (xmin, xmax) = (-1.0, 1.0);
    }
    let scale = f64::from(st.from_f64((xmax - xmin) / maxq));
    let zero = if s.symmetric {
        f64::from(1u32 << (s.bits - 1))
    } else if scale > 0.0 {
        (-xmin / scale).round_ties_even().clamp(0.0, maxq)
    } else {
        0.0
    };
    Grid { scale, zero }
}

/// The code of `x` on grid `g` and the value it stands for.
#[inline]
fn quantize(x: f64, g: Grid, maxq: f64) -> (u8, f64) {
    // A scale that rounded to 0 (float16 underflow): every value is the zero point's 0.
    let q = if g.scale > 0.0 {
        ((x / g.scale).round_ties_even() + g.zero).clamp(0.0, maxq)
    } else {
        g.zero
    };
    (q as u8, g.scale * (q - g.zero))
}

/// Quantizes the `[k, n]` row-major weight `w` with GPTQ for the prepared Hessian `p` into
/// MatMulNBits' layout. Fails when a scale is not finite in the weight's type (float16 overflow).
pub fn gptq(w: &Elems<'_>, s: BlockShape, p: &Prepared) -> Result<NBits, String> {
    debug_assert_eq!(w.len(), s.k * s.n);
    if p.k != s.k {
        return Err(format!(
            "the Hessian is for K = {}, the weight has K = {}",
            p.k, s.k
        ));
    }
    let (kb, blob) = (s.k_blocks(), s.blob());
    let mut packed = vec![0u8; s.n * kb * blob];
    let mut scales = vec![0f32; s.n * kb];
    let mut zps = vec![0u8; s.n * kb];
    packed
        .par_chunks_mut(TILE * kb * blob)
        .zip(scales.par_chunks_mut(TILE * kb))
        .zip(zps.par_chunks_mut(TILE * kb))
        .enumerate()
        .try_for_each(|(t, ((packed, scales), zps))| {
            let c0 = t * TILE;
            let cols = TILE.min(s.n - c0);
            let codes = solve_tile(w, &s, p, c0, cols, scales, zps)?;
            let per_byte = 8 / s.bits as usize;
            for c in 0..cols {
                for b in 0..kb {
                    let out = &mut packed[(c * kb + b) * blob..(c * kb + b + 1) * blob];
                    for r in b * s.block..s.k.min((b + 1) * s.block) {
                        let i = r - b * s.block;
                        out[i / per_byte] |=
                            codes[r * cols + c] << ((i % per_byte) as u32 * s.bits);
                    }
                }
            }
            Ok::<(), String>(())
        })?;
    Ok(NBits::with_codes(s, packed, scales, zps))
}

/// GPTQ on columns `c0..c0 + cols`: returns their `[K, cols]` codes in weight row order and fills
/// the tile's `[cols, k_blocks]` scales and zero points.
fn solve_tile(
    w: &Elems<'_>,
    s: &BlockShape,
    p: &Prepared,
    c0: usize,
    cols: usize,
    scales: &mut [f32],
    zps: &mut [u8],
) -> Result<Vec<u8>, String> {
    let (k, kb, st) = (s.k, s.k_blocks(), w.scale_type());
    let maxq = f64::from((1u32 << s.bits) - 1);
    // The tile in weight row order, dead rows zeroed (their input is always 0).
    let mut orig = vec![0f64; k * cols];
    let mut row = vec![0f32; cols];
    for r in 0..k {
        if !p.dead[r] {
            w.read_into(r * s.n + c0, &mut row);
            for (o, &v) in orig[r * cols..(r + 1) * cols].iter_mut().zip(&row) {
                *o = f64::from(v);
            }
        }
    }
    let mut grids = vec![
        Grid {
            scale: 0.0,
            zero: 0.0
        };
        kb * cols
    ];
    let act_order = p.act_order;
    if act_order {
        // Static groups: every block's grid from the unpermuted weight, before the loop.
        for b in 0..kb {
            let rows = b * s.block..k.min((b + 1) * s.block);
            set_grids(
                &orig,
                cols,
                rows.map(|r| r * cols),
                &mut grids[b * cols..(b + 1) * cols],
                s,
                st,
            );
        }
    }
    // The working copy in solver order.
    let mut wt = vec![0f64; k * cols];
    for (i, &r) in p.order.iter().enumerate() {
        wt[i * cols..(i + 1) * cols].copy_from_slice(&orig[r * cols..(r + 1) * cols]);
    }
    drop(orig);
    let mut codes = vec![0u8; k * cols];
    let lazy = LAZY.max(s.block);
    let mut err = vec![0f64; lazy * cols];
    for i1 in (0..k).step_by(lazy) {
        let i2 = k.min(i1 + lazy);
        for i in i1..i2 {
            let r = p.order[i];
            let b = r / s.block;
            if !act_order && i % s.block == 0 {
                // The block's rows i..i+block are all in this batch and carry every update so far.
                let rows = i..k.min(i + s.block);
                set_grids(
                    &wt,
                    cols,
                    rows.map(|x| x * cols),
                    &mut grids[b * cols..(b + 1) * cols],
                    s,
                    st,
                );
            }
            let d = p.u[i * k + i];
            let (head, tail) = wt.split_at_mut((i + 1) * cols);
            let x = &head[i * cols..];
            let e = &mut err[(i - i1) * cols..(i - i1 + 1) * cols];
            for c in 0..cols {
                let (q, v) = quantize(x[c], grids[b * cols + c], maxq);
                codes[r * cols + c] = q;
                e[c] = (x[c] - v) / d;
            }
            // Within the batch, row by row: w[j] -= e · U[i][j] for the batch's later rows.
            for j in i + 1..i2 {
                let u = p.u[i * k + j];
                let wj = &mut tail[(j - i - 1) * cols..(j - i) * cols];
                for (wv, &ev) in wj.iter_mut().zip(e.iter()) {
                    *wv -= ev * u;
                }
            }
        }
        if i2 < k {
            // The lazy update of every later row: W[i2..] -= U[i1..i2, i2..]ᵀ · E.
            let rest = MatMut::from_row_major_slice_mut(&mut wt[i2 * cols..], k - i2, cols);
            let u =
                MatRef::from_row_major_slice_with_stride(&p.u[i1 * k + i2..], i2 - i1, k - i2, k);
            let e = MatRef::from_row_major_slice(&err[..(i2 - i1) * cols], i2 - i1, cols);
            matmul(rest, Accum::Add, u.transpose(), e, -1.0, Par::Seq);
        }
    }
    for c in 0..cols {
        for b in 0..kb {
            let g = grids[b * cols + c];
            // Already rounded to the stored type: infinite when that type overflowed.
            let stored = g.scale as f32;
            if !stored.is_finite() {
                return Err(format!(
                    "block {b} of column {} needs scale {} which its type cannot hold",
                    c0 + c,
                    g.scale
                ));
            }
            scales[c * kb + b] = stored;
            zps[c * kb + b] = g.zero as u8;
        }
    }
    Ok(codes)
}

/// Each column's grid over the rows starting at `starts` (offsets into `m`, a `[_, cols]` buffer).
fn set_grids(
    m: &[f64],
    cols: usize,
    starts: impl Iterator<Item = usize>,
    out: &mut [Grid],
    s: &BlockShape,
    st: ScaleType,
) {
    let (mut lo, mut hi) = (vec![f64::INFINITY; cols], vec![f64::NEG_INFINITY; cols]);
    for start in starts {
        for ((l, h), &v) in lo
            .iter_mut()
            .zip(hi.iter_mut())
            .zip(&m[start..start + cols])
        {
            *l = l.min(v);
            *h = h.max(v);
        }
    }
    for (c, g) in out.iter_mut().enumerate() {
        *g = grid(lo[c], hi[c], s, st);
    }
}

#[cfg(test)]
#[path = "gptq_tests.rs"]
mod tests;
