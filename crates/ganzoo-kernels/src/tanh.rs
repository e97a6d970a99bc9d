//! `y = tanh(x)`, the generators' output activation, in one parallel pass, and its
//! backward `dx = dy · (1 − y²)` in one more (Candle runs the forward on one
//! thread and the backward as four allocating ops). The backward is differentiable
//! again: in `dy` it is the same op, in `y` it is `−2 y · dy · g`. For `f32` the
//! tangent itself is `tanh_f32`, a branch-free formula the compiler vectorises
//! (libm's `tanhf` is a call per element), within one rounding of the exact value.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use crate::elementwise::zip_map;
use crate::gemm::Element;
use crate::storage::{typed, Typed};

/// The hyperbolic tangent of the element types the kernels run on.
trait Tanh: Element {
    fn tanh(self) -> Self;
}

impl Tanh for f32 {
    fn tanh(self) -> Self {
        tanh_f32(self)
    }
}

impl Tanh for f64 {
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
}

/// `|x|` below which [`tanh_f32`] sums the Taylor series (error under 1e-9 relative).
const SERIES_BELOW: f64 = 0.3;

/// `tanh(x)` for `f32`, in `f64` arithmetic without branches or calls, so a loop of
/// it vectorises (libm's `tanhf` cost about 25 ns an element here, as much as the
/// generators' last transposed convolution): near 0 the odd Taylor series to `x¹¹`,
/// elsewhere `sign(x) (1 − t)/(1 + t)` with `t = e^{−2|x|}` (no cancellation, as
/// `t ≤ e^{−0.6}`). Within one `f32` rounding of the exact value; NaN stays NaN,
/// `±∞` gives `±1`, `−0` stays `−0`.
fn tanh_f32(x: f32) -> f32 {
    let x = f64::from(x);
    let a = x.abs();
    let z = x * x;
    let series = x
        * (1.0
            + z * (-1.0 / 3.0
                + z * (2.0 / 15.0 + z * (-17.0 / 315.0 + z * (62.0 / 2835.0 + z * (-1382.0 / 155_925.0))))));
    // Past |x| = 20, tanh is 1 in f32 and e^{−40} keeps 2^n far from underflow.
    let t = exp_of_negative(2.0 * a.min(20.0));
    let ratio = ((1.0 - t) / (1.0 + t)).copysign(x);
    // `a > SERIES_BELOW` is false for NaN, whose series is NaN.
    (if a > SERIES_BELOW { ratio } else { series }) as f32
}

/// `e^{−y}` for `0 ≤ y ≤ 40`: `−y = n ln 2 + r` with `n` an integer and `|r| ≤ ln 2 / 2`,
/// `e^r` from its Taylor series to `r⁹` (relative error under 1e-11), `2ⁿ` built from
/// its exponent bits. `n` is rounded by adding and subtracting `1.5 · 2⁵²`, which
/// leaves it in the low bits of the sum, so no call or float-to-integer conversion
/// stops vectorisation.
fn exp_of_negative(y: f64) -> f64 {
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 · 2⁵²
    const LN2_HI: f64 = 0.693_147_180_369_123_8; // ln 2 = LN2_HI + LN2_LO
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let shifted = -y * std::f64::consts::LOG2_E + SHIFT;
    let n = shifted - SHIFT;
    let r = (-y - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / FACTORIALS[9];
    for k in (0..9).rev() {
        p = p * r + 1.0 / FACTORIALS[k];
    }
    let n_bits = shifted.to_bits().wrapping_sub(SHIFT.to_bits());
    f64::from_bits(n_bits.wrapping_add(1023).wrapping_shl(52)) * p
}

/// `k!` for `k = 0..=9`.
const FACTORIALS: [f64; 10] = [1.0, 1.0, 2.0, 6.0, 24.0, 120.0, 720.0, 5040.0, 40_320.0, 362_880.0];

fn tanh_of<T: Tanh>(x: &[T]) -> Vec<T> {
    zip_map(x, x, |v, _| v.tanh())
}

/// `dy · (1 − y²)`, rounded as Candle's `dy · (y² − 1)` negated (the same value).
fn tanh_grad_of<T: Element>(y: &[T], dy: &[T]) -> Vec<T> {
    zip_map(y, dy, |y, g| g * (T::ONE - y * y))
}

struct TanhOp;

impl CustomOp1 for TanhOp {
    fn name(&self) -> &'static str {
        "ganzoo-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = match typed(self.name(), [(s, l)])? {
            Typed::F32([x]) => CpuStorage::F32(tanh_of(x)),
            Typed::F64([x]) => CpuStorage::F64(tanh_of(x)),
        };
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(tanh_grad(y, dy)?))
    }
}

/// `(y, dy) → dy · (1 − y²)`.
struct TanhGradOp;

impl CustomOp2 for TanhGradOp {
    fn name(&self) -> &'static str {
        "ganzoo-tanh-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("tanh backward: output {:?} and gradient {:?} differ", l1.dims(), l2.dims());
        }
        let out = match typed(self.name(), [(s1, l1), (s2, l2)])? {
            Typed::F32([y, dy]) => CpuStorage::F32(tanh_grad_of(y, dy)),
            Typed::F64([y, dy]) => CpuStorage::F64(tanh_grad_of(y, dy)),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(&self, y: &Tensor, dy: &Tensor, _: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy_grad = crate::storage::tracked(dy, || tanh_grad(y, g))?;
        let y_grad = crate::storage::tracked(y, || (y * dy)?.mul(g)?.affine(-2.0, 0.0))?;
        Ok((y_grad, dy_grad))
    }
}

/// `tanh(x)`.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(TanhOp)
}

/// `dy · (1 − y²)` for `y = tanh(x)`: the gradient of `Σ tanh(x) · dy` in `x`.
pub fn tanh_grad(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    y.contiguous()?.apply_op2(&dy.contiguous()?, TanhGradOp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite `f32` of one sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn f32_tanh_is_within_one_rounding_of_the_exact_value() {
        let mut worst = (0, 0.0f32);
        // Every 97th f32 bit pattern from 0 to 20, both signs: about 11 million values.
        let top = 20.0f32.to_bits();
        for bits in (0..=top).step_by(97).chain([1, top]) {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let exact = f64::from(x).tanh() as f32;
                let d = ulps(tanh_f32(x), exact);
                if d > worst.0 {
                    worst = (d, x);
                }
            }
        }
        assert!(worst.0 <= 1, "{} ulps at x = {:e}", worst.0, worst.1);
        // Both sides of the switch from the series to the exponential.
        for x in [f32::from_bits(0.3f32.to_bits() - 1), 0.3, f32::from_bits(0.3f32.to_bits() + 1), -0.3] {
            assert!(ulps(tanh_f32(x), f64::from(x).tanh() as f32) <= 1, "x = {x}");
        }
    }

    #[test]
    fn f32_tanh_keeps_the_special_values() {
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(1e30), 1.0);
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        let tiny = f32::from_bits(1); // the smallest subnormal
        assert_eq!(tanh_f32(tiny), tiny);
        assert_eq!(tanh_f32(0.5), 0.462_117_16);
    }
}
