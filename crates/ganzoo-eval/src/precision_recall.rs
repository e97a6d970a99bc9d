//! Precision and recall on k-nearest-neighbour manifolds (Kynkäänniemi et al. 2019, §3):
//! each set's manifold is the union of balls around its points, each ball's radius the
//! distance to the point's `k`-th nearest neighbour in its own set; precision is the share
//! of generated points inside the real manifold, recall the share of real points inside
//! the generated one.
//!
//! Every pair of points is compared (`(n + m)²` distances for `n` generated and `m` real
//! points), in blocks of 512 query rows against 2,048 rows at a time: each block's
//! distances are f64 matrix products on one thread, at most 16 blocks run at once, and
//! each row's result depends on its block alone, so the numbers are the same on any
//! number of threads.

use faer::Mat;
use rayon::prelude::*;

use crate::{EvalError, Result};

/// Query rows per block.
const BLOCK: usize = 512;
/// Support rows per product within a block: 8 MiB of f64 products.
const TILE: usize = 2048;
/// Blocks run in parallel between two progress reports.
const BLOCKS_PER_REPORT: usize = 16;

/// Precision and recall of `fake` against `real` (row-major, `dim` features per row),
/// balls set by the `k`-th nearest neighbour. `progress(done, total)` is called on the
/// calling thread as the comparisons start (0 done) and between blocks, with the pairs of
/// points compared so far.
pub fn precision_recall(
    real: &[f32],
    fake: &[f32],
    dim: usize,
    k: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(f64, f64)> {
    if dim == 0 || !real.len().is_multiple_of(dim) || !fake.len().is_multiple_of(dim) || k == 0 {
        return Err(EvalError::Samples(format!("precision and recall need rows of {dim} features and k ≥ 1")));
    }
    crate::error::check_finite(real, "the real features")?;
    crate::error::check_finite(fake, "the generated features")?;
    let (r, f) = (Points::new(real, dim), Points::new(fake, dim));
    if r.len() <= k || f.len() <= k {
        return Err(EvalError::TooFew { what: "precision and recall", needed: k + 1, got: r.len().min(f.len()) });
    }
    let total = ((r.len() + f.len()) as u64).pow(2);
    progress(0, total);
    let mut pairs = Pairs { done: 0, total, progress };
    let (rr, fr) = (radii(&r, k, &mut pairs), radii(&f, k, &mut pairs));
    let precision = inside(&f, &r, &rr, &mut pairs);
    let recall = inside(&r, &f, &fr, &mut pairs);
    Ok((precision, recall))
}

/// Bytes [`precision_recall`] works in for `n` and `m` points of `dim` features on
/// `threads` threads: both sets as f64 with their norms and radii, and the blocks in flight.
pub fn working_bytes(n: usize, m: usize, dim: usize, k: usize, threads: usize) -> u128 {
    let points = 8 * (n + m) as u128 * (dim as u128 + 2);
    let in_flight = threads.clamp(1, BLOCKS_PER_REPORT) as u128;
    points + in_flight * 8 * BLOCK as u128 * (TILE as u128 + k as u128 + 1)
}

/// Rows as an f64 matrix, with their squared norms.
struct Points {
    rows: Mat<f64>,
    norms: Vec<f64>,
}

impl Points {
    fn new(data: &[f32], dim: usize) -> Self {
        let rows = Mat::from_fn(data.len() / dim, dim, |i, j| f64::from(data[i * dim + j]));
        let norms = (0..rows.nrows()).map(|i| (0..dim).map(|j| rows[(i, j)] * rows[(i, j)]).sum()).collect();
        Self { rows, norms }
    }

    fn len(&self) -> usize {
        self.rows.nrows()
    }

    /// `visit(i, j, d)` for the rows `i` in `from..to` of `self` and every row `j` of
    /// `support` (in no particular order), `d` their squared distance; `support` taken
    /// [`TILE`] rows at a time, so that a block holds `BLOCK × TILE` products whatever the
    /// sets' sizes.
    fn distances(&self, from: usize, to: usize, support: &Points, mut visit: impl FnMut(usize, usize, f64)) {
        let queries = self.rows.subrows(from, to - from);
        for start in (0..support.len()).step_by(TILE) {
            let end = (start + TILE).min(support.len());
            let dots = queries * support.rows.subrows(start, end - start).transpose();
            // Column by column: faer's matrices are column-major.
            for j in start..end {
                let column = dots.col(j - start);
                for i in from..to {
                    visit(i, j, squared_distance(self.norms[i], support.norms[j], column[i - from]));
                }
            }
        }
    }
}

/// `‖x‖² + ‖y‖² − 2 xᵀy`, never below 0 (rounding).
fn squared_distance(norm_x: f64, norm_y: f64, dot: f64) -> f64 {
    (norm_x + norm_y - 2.0 * dot).max(0.0)
}

/// Pairs compared so far, passed on to the caller's `progress`.
struct Pairs<'a> {
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl Pairs<'_> {
    /// `f(from, to)` for every block of `rows` query rows, in parallel, results in row
    /// order; `support` pairs per row counted after each run of blocks.
    fn blocks<T: Send>(&mut self, rows: usize, support: usize, f: impl Fn(usize, usize) -> Vec<T> + Sync) -> Vec<T> {
        let starts: Vec<usize> = (0..rows).step_by(BLOCK).collect();
        let mut out = Vec::with_capacity(rows);
        for run in starts.chunks(BLOCKS_PER_REPORT) {
            let results: Vec<Vec<T>> = run.par_iter().map(|&from| f(from, (from + BLOCK).min(rows))).collect();
            out.extend(results.into_iter().flatten());
            let last = (run[run.len() - 1] + BLOCK).min(rows);
            self.done += (last - run[0]) as u64 * support as u64;
            (self.progress)(self.done, self.total);
        }
        out
    }
}

/// Each row's squared distance to its `k`-th nearest other row.
fn radii(x: &Points, k: usize, pairs: &mut Pairs) -> Vec<f64> {
    pairs.blocks(x.len(), x.len(), |from, to| {
        let mut nearest: Vec<Nearest> = (from..to).map(|_| Nearest::new(k)).collect();
        x.distances(from, to, x, |i, j, d| {
            if i != j {
                nearest[i - from].offer(d);
            }
        });
        nearest.iter().map(Nearest::kth).collect()
    })
}

/// Share of the rows of `query` within the ball of some row of `support`.
fn inside(query: &Points, support: &Points, radii: &[f64], pairs: &mut Pairs) -> f64 {
    let hits = pairs.blocks(query.len(), support.len(), |from, to| {
        let mut hit = vec![false; to - from];
        query.distances(from, to, support, |i, j, d| hit[i - from] |= d <= radii[j]);
        hit
    });
    hits.iter().filter(|&&hit| hit).count() as f64 / query.len() as f64
}

/// The `k` smallest values offered, in ascending order.
struct Nearest {
    k: usize,
    smallest: Vec<f64>,
}

impl Nearest {
    fn new(k: usize) -> Self {
        Self { k, smallest: Vec::with_capacity(k + 1) }
    }

    fn offer(&mut self, d: f64) {
        if self.smallest.len() == self.k && d >= self.smallest[self.k - 1] {
            return;
        }
        let at = self.smallest.partition_point(|&s| s <= d);
        self.smallest.insert(at, d);
        self.smallest.truncate(self.k);
    }

    /// The `k`-th smallest (the caller offers at least `k` values).
    fn kth(&self) -> f64 {
        self.smallest[self.smallest.len() - 1]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nearest_keeps_the_k_smallest_in_order() {
        let mut n = Nearest::new(3);
        for d in [5.0, 1.0, 4.0, 1.0, 9.0, 0.5, 3.0] {
            n.offer(d);
        }
        assert_eq!(n.smallest, [0.5, 1.0, 1.0]);
        assert_eq!(n.kth(), 1.0);
        let mut one = Nearest::new(1);
        one.offer(2.0);
        assert_eq!(one.kth(), 2.0);
    }
}
