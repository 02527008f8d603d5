//! Tests of the GPTQ solver: the layout against plain rounding on an identity Hessian, the
//! Hessian-norm error against RTN's and the default's on correlated inputs, dead inputs,
//! act-order, float16 scales, indefinite Hessians.

use super::*;
use crate::numerics::F32Data;
use crate::numerics::blocks::{ZeroPoints, nbits};
use crate::numerics::rtn::{RtnKind, rtn};

/// A deterministic pseudo-random stream in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// The `[k, n]` weight MatMulNBits reads from `q`.
fn dequantize(q: &NBits) -> Vec<f64> {
    let s = q.shape;
    let (kb, blob, per) = (s.k_blocks(), s.blob(), 8 / s.bits as usize);
    let mut out = vec![0f64; s.k * s.n];
    for col in 0..s.n {
        for r in 0..s.k {
            let (b, i) = (r / s.block, r % s.block);
            let byte = q.packed[(col * kb + b) * blob + i / per];
            let c = f64::from(
                (u16::from(byte) >> ((i % per) as u32 * s.bits)) & ((1u16 << s.bits) - 1),
            );
            let zp = match &q.zero_points {
                ZeroPoints::Default => f64::from(1u32 << (s.bits - 1)),
                ZeroPoints::Codes(z) => f64::from(z[col * kb + b]),
                ZeroPoints::Float(z) => f64::from(z[col * kb + b]),
            };
            out[r * s.n + col] = (c - zp) * f64::from(q.scales[col * kb + b]);
        }
    }
    out
}

/// `tr((W-Ŵ)ᵀ H (W-Ŵ))`: the output error on the calibration inputs.
fn hessian_error(w: &[f32], q: &NBits, h: &[f64]) -> f64 {
    let (k, n) = (q.shape.k, q.shape.n);
    let d: Vec<f64> = dequantize(q)
        .iter()
        .zip(w)
        .map(|(a, &b)| a - f64::from(b))
        .collect();
    let mut total = 0.0;
    for c in 0..n {
        for i in 0..k {
            for j in 0..k {
                total += d[i * n + c] * h[i * k + j] * d[j * n + c];
            }
        }
    }
    total
}

/// `2/m XᵀX` of `m` rows of strongly correlated inputs (a random mix of a few factors, plus
/// noise), with input `dead` (if any) always 0.
fn correlated_hessian(k: usize, m: usize, dead: Option<usize>, rng: &mut Rng) -> Vec<f64> {
    let factors = 4;
    let mix: Vec<f64> = (0..factors * k).map(|_| rng.next()).collect();
    let mut h = vec![0f64; k * k];
    for _ in 0..m {
        let z: Vec<f64> = (0..factors).map(|_| rng.next()).collect();
        let x: Vec<f64> = (0..k)
            .map(|i| {
                if Some(i) == dead {
                    return 0.0;
                }
                let v: f64 = (0..factors).map(|f| z[f] * mix[f * k + i]).sum();
                v + 0.05 * rng.next()
            })
            .collect();
        for i in 0..k {
            for j in 0..k {
                h[i * k + j] += 2.0 / m as f64 * x[i] * x[j];
            }
        }
    }
    h
}

fn shape(k: usize, n: usize, block: usize, bits: u32, symmetric: bool) -> BlockShape {
    BlockShape {
        k,
        n,
        block,
        bits,
        symmetric,
    }
}

const SETTINGS: GptqSettings = GptqSettings {
    percdamp: 0.01,
    act_order: false,
};

/// With an identity Hessian no error is propagated: every code is the value rounded on its block's
/// grid, in MatMulNBits' layout (K not a multiple of the block, an odd block count, N = 1).
#[test]
fn identity_hessian_is_rounding_on_the_grid() {
    let mut rng = Rng(7);
    for symmetric in [false, true] {
        let (k, n) = (40, 1);
        let w: Vec<f32> = (0..k * n).map(|_| rng.next() as f32).collect();
        let mut h = vec![0f64; k * k];
        for i in 0..k {
            h[i * k + i] = 1.0;
        }
        let s = shape(k, n, 16, 4, symmetric);
        let p = prepare(h, k, SETTINGS).expect("prepared");
        let q = gptq(&Elems::F32(F32Data::Slice(&w)), s, &p).expect("quantized");
        assert_eq!(q.packed.len(), 3 * 8);
        let d = dequantize(&q);
        for b in 0..3 {
            let rows = b * 16..k.min(b * 16 + 16);
            let (lo, hi) = rows.clone().fold((f64::MAX, f64::MIN), |(l, h), r| {
                (l.min(f64::from(w[r])), h.max(f64::from(w[r])))
            });
            let g = grid(lo, hi, &s, ScaleType::F32);
            assert_eq!(f64::from(q.scales[b]), g.scale);
            for r in rows {
                let (_, v) = quantize(f64::from(w[r]), g, 15.0);
                assert_eq!(d[r], v, "row {r} symmetric {symmetric}");
            }
        }
    }
}

/// On correlated inputs GPTQ's output error is well below RTN's and the default's on the same
/// weight (the test fails if the solver propagates nothing), with and without act-order, with a
/// dead input, for float32 and float16 weights.
#[test]
fn beats_round_to_nearest_in_the_hessian_norm() {
    let mut rng = Rng(42);
    let (k, n) = (96, 24);
    let h = correlated_hessian(k, 400, Some(5), &mut rng);
    let w: Vec<f32> = (0..k * n).map(|_| rng.next() as f32 * 0.1).collect();
    for (bits, symmetric, act_order) in [
        (4, false, false),
        (4, true, false),
        (4, false, true),
        (2, false, false),
        (8, true, true),
    ] {
        let s = shape(k, n, 32, bits, symmetric);
        let data = Elems::F32(F32Data::Slice(&w));
        let p = prepare(
            h.clone(),
            k,
            GptqSettings {
                percdamp: 0.01,
                act_order,
            },
        )
        .expect("prepared");
        let g = hessian_error(&w, &gptq(&data, s, &p).expect("gptq"), &h);
        let r = hessian_error(&w, &rtn(&data, s, RtnKind::Rtn), &h);
        let dflt = hessian_error(&w, &nbits(&data, s), &h);
        assert!(
            g < 0.7 * r && g < 0.7 * dflt,
            "bits {bits} sym {symmetric} act {act_order}: gptq {g} rtn {r} default {dflt}"
        );
    }
    // The dead input's weight row is zero in the result.
    let s = shape(k, n, 32, 4, false);
    let p = prepare(h.clone(), k, SETTINGS).expect("prepared");
    let q = gptq(&Elems::F32(F32Data::Slice(&w)), s, &p).expect("gptq");
    let d = dequantize(&q);
    assert!(
        d[5 * n..6 * n].iter().all(|&v| v == 0.0),
        "{:?}",
        &d[5 * n..6 * n]
    );
    // float16: scales are float16 values and the codes were chosen against them.
    let bytes: Vec<u8> = w
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    let w16: Vec<f32> = w.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    let q16 = gptq(&Elems::F16(&bytes), s, &p).expect("gptq f16");
    assert!(
        q16.scales
            .iter()
            .all(|&v| f32::from(half::f16::from_f32(v)) == v)
    );
    let g16 = hessian_error(&w16, &q16, &h);
    let r16 = hessian_error(&w16, &rtn(&Elems::F16(&bytes), s, RtnKind::Rtn), &h);
    assert!(g16 < 0.7 * r16, "f16: gptq {g16} rtn {r16}");
}

/// Two weights of different tile positions give the same codes as one run over both: tiles are
/// independent (and the run is deterministic).
#[test]
fn tiles_are_independent_and_deterministic() {
    let mut rng = Rng(3);
    let (k, n) = (48, TILE + 5);
    let h = correlated_hessian(k, 100, None, &mut rng);
    let w: Vec<f32> = (0..k * n).map(|_| rng.next() as f32).collect();
    let s = shape(k, n, 16, 4, false);
    let p = prepare(h, k, SETTINGS).expect("prepared");
    let a = gptq(&Elems::F32(F32Data::Slice(&w)), s, &p).expect("gptq");
    let b = gptq(&Elems::F32(F32Data::Slice(&w)), s, &p).expect("gptq");
    assert_eq!(a, b);
    // The last 5 columns alone.
    let tail: Vec<f32> = (0..k)
        .flat_map(|r| w[r * n + TILE..(r + 1) * n].to_vec())
        .collect();
    let t = gptq(
        &Elems::F32(F32Data::Slice(&tail)),
        shape(k, 5, 16, 4, false),
        &p,
    )
    .expect("gptq");
    let kb = s.k_blocks();
    assert_eq!(t.scales, a.scales[TILE * kb..]);
    assert_eq!(t.packed, a.packed[TILE * kb * s.blob()..]);
}

/// An indefinite Hessian fails after the retries with a reason; a non-finite one at once.
#[test]
fn indefinite_and_non_finite_hessians_fail() {
    let k = 4;
    let mut h = vec![0f64; k * k];
    for i in 0..k {
        h[i * k + i] = 1.0;
    }
    h[2 * k + 2] = -100.0;
    let e = prepare(h.clone(), k, SETTINGS).expect_err("indefinite");
    assert!(e.contains("not positive definite"), "{e}");
    h[2 * k + 2] = f64::NAN;
    let e = prepare(h, k, SETTINGS).expect_err("nan");
    assert!(e.contains("not finite"), "{e}");
}

/// A near-singular Hessian (two identical inputs) is factored after damping.
#[test]
fn singular_hessian_is_damped() {
    let k = 3;
    let h = vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 2.0];
    let p = prepare(h, k, SETTINGS).expect("damped");
    assert!(p.percdamp_used >= 0.01);
}
