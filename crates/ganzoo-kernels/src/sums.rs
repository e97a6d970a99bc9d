//! Sums over long slices in f64 for the normalisation kernels: per channel (batch
//! norm) and per sample (layer norm).

use crate::gemm::Element;

/// Running `(Σ a, Σ a·b)` over paired slices, in f64 with eight independent lanes
/// (so the loop vectorises; a single running sum would serialise every addition).
/// One accumulator serves a whole channel, so a 4×4 plane costs two vector steps,
/// not a reduction of its own.
#[derive(Default)]
pub struct Sums {
    a: [f64; 8],
    ab: [f64; 8],
}

impl Sums {
    #[inline(always)]
    pub fn add<T: Element>(&mut self, a: &[T], b: &[T]) {
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for k in 0..8 {
                let v = x[k].to_f64();
                self.a[k] += v;
                self.ab[k] += v * y[k].to_f64();
            }
        }
        for (k, (x, y)) in ra.iter().zip(rb).enumerate() {
            self.a[k] += x.to_f64();
            self.ab[k] += x.to_f64() * y.to_f64();
        }
    }

    pub fn totals(&self) -> (f64, f64) {
        (self.a.iter().sum(), self.ab.iter().sum())
    }
}
