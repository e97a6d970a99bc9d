//! ganzoo and the PyTorch reference timed in alternating rounds.
//!
//! On a shared machine the speed available to a process drifts by tens of percent
//! within minutes, so one ganzoo run beside one PyTorch run says little. Each model
//! is timed in `n` rounds; a round times both sides back to back, ganzoo first in
//! even rounds and PyTorch first in odd ones, so a machine getting faster or slower
//! favours neither side. A round's ratio compares two runs seconds apart; the
//! figure reported is the median of the per-round ratios, with their range.

use crate::throughput::Throughput;
use crate::torch::TorchThroughput;

/// One side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ganzoo,
    PyTorch,
}

/// The order of round `round` (counted from 0): ganzoo first in even rounds.
pub fn order(round: usize) -> [Side; 2] {
    if round.is_multiple_of(2) {
        [Side::Ganzoo, Side::PyTorch]
    } else {
        [Side::PyTorch, Side::Ganzoo]
    }
}

/// The median of `values` (the mean of the middle two for an even count; NaN when
/// empty).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One round: both sides timed back to back.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub ours: Throughput,
    pub theirs: TorchThroughput,
}

impl Round {
    /// ganzoo's iterations per second over PyTorch's: above 1, ganzoo is faster.
    pub fn ratio(&self) -> f64 {
        self.ours.iters_per_s / self.theirs.gen_iters_per_s
    }
}

/// Every round of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub rounds: Vec<Round>,
}

impl Comparison {
    fn ours(&self) -> impl Iterator<Item = &Throughput> {
        self.rounds.iter().map(|r| &r.ours)
    }

    fn theirs(&self) -> impl Iterator<Item = &TorchThroughput> {
        self.rounds.iter().map(|r| &r.theirs)
    }

    pub fn model(&self) -> &str {
        self.rounds.first().map_or("", |r| r.ours.model.as_str())
    }

    pub fn batch(&self) -> usize {
        self.rounds.first().map_or(0, |r| r.ours.batch)
    }

    /// The figure that counts: the median of the per-round ratios.
    pub fn ratio(&self) -> f64 {
        median(&self.ratios())
    }

    pub fn ratios(&self) -> Vec<f64> {
        self.rounds.iter().map(Round::ratio).collect()
    }

    /// The lowest and highest per-round ratio.
    pub fn ratio_range(&self) -> (f64, f64) {
        let r = self.ratios();
        (r.iter().copied().fold(f64::INFINITY, f64::min), r.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    }

    /// The median over rounds of ganzoo's (median) iterations per second.
    pub fn ours_iters_per_s(&self) -> f64 {
        median(&self.ours().map(|t| t.iters_per_s).collect::<Vec<_>>())
    }

    pub fn theirs_iters_per_s(&self) -> f64 {
        median(&self.theirs().map(|t| t.gen_iters_per_s).collect::<Vec<_>>())
    }

    /// Peak memory: the highest of any round (each round is a fresh process).
    pub fn ours_peak_rss_mb(&self) -> f64 {
        self.ours().map(|t| t.peak_rss_mb).fold(0.0, f64::max)
    }

    pub fn theirs_peak_rss_mb(&self) -> f64 {
        self.theirs().map(|t| t.peak_rss_mb).fold(0.0, f64::max)
    }

    /// Peak GPU memory in use, the highest of any round (`None` off CUDA).
    pub fn peak_gpu_mb(&self) -> (Option<f64>, Option<f64>) {
        let max = |v: Vec<Option<f64>>| v.into_iter().flatten().reduce(f64::max);
        (max(self.ours().map(|t| t.peak_gpu_mb).collect()), max(self.theirs().map(|t| t.peak_gpu_mb).collect()))
    }

    /// The largest share of the CPUs other processes took while either side ran.
    pub fn other_cpu_frac(&self) -> (f64, f64) {
        (
            self.ours().map(|t| t.other_cpu_frac).fold(0.0, f64::max),
            self.theirs().map(|t| t.other_cpu_frac).fold(0.0, f64::max),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn ours(rate: f64, rss: f64) -> Throughput {
        Throughput {
            model: "dcgan32".into(),
            batch: 64,
            iters_per_s: rate,
            iters_per_s_min: rate,
            iters_per_s_max: rate,
            ms_per_iter: 1000.0 / rate,
            images_per_s: rate * 64.0,
            critic_images_per_s: rate * 128.0,
            peak_rss_mb: rss,
            peak_heap_mb: None,
            peak_gpu_mb: None,
            host_ms_per_iter: None,
            cuda_graphs: None,
            threads: 2,
            device: "cpu".into(),
            kernels: "ganzoo".into(),
            precision: "f32".into(),
            isa: "avx2".into(),
            repeats: 1,
            iters_per_repeat: 2,
            warmup_iters: 3,
            other_cpu_frac: rss / 1000.0,
        }
    }

    pub(crate) fn theirs(rate: f64, rss: f64) -> TorchThroughput {
        TorchThroughput {
            case: "dcgan32".into(),
            batch: 64,
            gen_iters_per_s: rate,
            peak_rss_mb: rss,
            peak_gpu_mb: None,
            other_cpu_frac: 0.0,
            threads: 2,
            torch: "2.15.0".into(),
        }
    }

    #[test]
    fn rounds_alternate_which_side_goes_first() {
        assert_eq!(order(0), [Side::Ganzoo, Side::PyTorch]);
        assert_eq!(order(1), [Side::PyTorch, Side::Ganzoo]);
        assert_eq!(order(4), order(0));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn the_ratio_is_the_median_of_per_round_ratios_not_of_the_medians() {
        // Round ratios 2.0, 0.5 and 0.8: median 0.8. The ratio of the sides' median
        // rates would be 2.0 / 2.0 = 1.0 and hide that ganzoo lost two rounds of three.
        let c = Comparison {
            rounds: vec![
                Round { ours: ours(2.0, 100.0), theirs: theirs(1.0, 900.0) },
                Round { ours: ours(1.0, 300.0), theirs: theirs(2.0, 800.0) },
                Round { ours: ours(4.0, 200.0), theirs: theirs(5.0, 700.0) },
            ],
        };
        assert_eq!(c.ratios(), vec![2.0, 0.5, 0.8]);
        assert_eq!(c.ratio(), 0.8);
        assert_eq!(c.ratio_range(), (0.5, 2.0));
        assert_eq!((c.ours_iters_per_s(), c.theirs_iters_per_s()), (2.0, 2.0));
        assert_eq!((c.ours_peak_rss_mb(), c.theirs_peak_rss_mb()), (300.0, 900.0));
        assert_eq!(c.other_cpu_frac(), (0.3, 0.0));
        assert_eq!((c.model(), c.batch()), ("dcgan32", 64));
    }
}
