//! Progress on stderr: downloads as an indicatif bar; training as a bar on a terminal,
//! plain lines elsewhere; evaluation's feature passes and precision / recall as lines
//! once they take a while.
//! Nothing here can fail: progress is not worth a run (a closed stderr, `2>&1 | head`,
//! a lost terminal, only drops it).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use ganzoo_data::DownloadProgress;
use ganzoo_train::{Metrics, Observer};
use indicatif::{HumanDuration, ProgressBar, ProgressState, ProgressStyle};

#[derive(Default)]
pub struct DownloadBar {
    bar: Option<ProgressBar>,
}

impl DownloadProgress for DownloadBar {
    fn begin(&mut self, file: &str, total_bytes: Option<u64>) {
        let bar = match total_bytes {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let style = ProgressStyle::with_template("{msg:28} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(file.to_string());
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

/// What a pass of `eval` goes through.
#[derive(Debug, Clone, Copy)]
pub enum Pass {
    /// Images through the network, the words naming them.
    Features(&'static str),
    /// Pairs of feature vectors compared for precision and recall, after FID and KID.
    Distances,
}

/// How far a pass of `eval` is, a line on stderr about every 10 % once it has run
/// [`EVAL_QUIET`]: Inception's feature pass over FID's 10,000 samples and as many real
/// images takes about half an hour on 2 CPU cores (docs/performance.md); precision and
/// recall compare every pair of the two sets' features, which grows with the square of
/// the counts (docs/performance.md, "The metrics after the features"); a classifier's
/// pass over 10,000 images takes seconds and says nothing.
pub struct EvalProgress {
    pass: Pass,
    /// When the pass began (for the metrics, the first of them).
    start: Instant,
    /// When its counting began: precision and recall report 0 done as they start.
    counting: Instant,
    next: Option<u64>,
}

/// How long a pass runs before it says how far it is.
pub const EVAL_QUIET: Duration = Duration::from_secs(5);

impl EvalProgress {
    pub fn new(pass: Pass) -> Self {
        Self::started(pass, Instant::now())
    }

    fn started(pass: Pass, start: Instant) -> Self {
        Self { pass, start, counting: start, next: None }
    }

    /// `done` of `total` images seen or pairs compared.
    pub fn at(&mut self, done: u64, total: u64) {
        if let Some(line) = self.line(done, total, Instant::now()) {
            crate::output::note(&line);
        }
    }

    fn line(&mut self, done: u64, total: u64, now: Instant) -> Option<String> {
        if done == 0 {
            self.counting = now;
        }
        let next = *self.next.get_or_insert(total / 10);
        if done < next.max(1) || done >= total {
            return None;
        }
        self.next = Some(done + total / 10);
        let left = (now - self.counting).as_secs_f64() * (total - done) as f64 / done as f64;
        let elapsed = now - self.start;
        if elapsed < EVAL_QUIET {
            return None;
        }
        let (elapsed, percent) = (elapsed.as_secs(), 100 * done / total);
        Some(match self.pass {
            Pass::Features(what) => {
                format!("features of {what}: {done} / {total} after {elapsed}s, about {left:.0}s left")
            }
            Pass::Distances => {
                format!("precision / recall: {percent} % of the distances after {elapsed}s, about {left:.0}s left")
            }
        })
    }
}

/// Training progress on stderr: a bar on a terminal; elsewhere (CI logs, files) plain
/// lines with the losses at the first log step, every [`PLAIN_EVERY`] after it and at
/// the last. Between log steps the bar moves every iteration, and an iteration longer
/// than [`LONG_ITERATION`] (WGAN's warm-up iterations take 100 critic steps: tens of
/// seconds each on a CPU, minutes between log steps) shows its critic steps; plain
/// output says the same after [`PLAIN_QUIET`] without a line.
pub struct TrainBar {
    bar: ProgressBar,
    /// Where plain lines go, and when the last ones were written; `None` on a terminal.
    plain: Option<Plain>,
    start: Instant,
    total: u64,
    /// The last log step's losses and speed, as the bar shows them.
    losses: String,
    under_way: Option<UnderWay>,
}

/// The iteration whose critic steps are being taken.
struct UnderWay {
    /// Counted from 0, as the trainer counts it.
    iteration: u64,
    /// When its first reported critic step ended.
    since: Instant,
    /// When the bar last showed its critic steps, if it has.
    shown: Option<Instant>,
}

struct Plain {
    out: Box<dyn Write>,
    /// The last line with losses.
    losses_at: Option<Instant>,
    /// The last line of any kind.
    line_at: Instant,
}

/// How often plain output repeats the losses.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);
/// How long plain output stays silent before saying where the run is.
pub const PLAIN_QUIET: Duration = Duration::from_secs(30);
/// How long an iteration runs before the bar shows its critic steps.
pub const LONG_ITERATION: Duration = Duration::from_secs(1);
/// The bar's critic-step text is rebuilt at most this often.
const CRITIC_REDRAW: Duration = Duration::from_millis(250);

impl TrainBar {
    /// `done` of `total` iterations; a bar when stderr is a terminal.
    pub fn new(total: u64, done: u64) -> Self {
        let plain = (!std::io::stderr().is_terminal()).then(|| Box::new(std::io::stderr()) as Box<dyn Write>);
        Self::with_output(total, done, plain, Instant::now())
    }

    /// Plain lines into `plain`, or a terminal bar where it is `None`; started at `now`.
    fn with_output(total: u64, done: u64, plain: Option<Box<dyn Write>>, now: Instant) -> Self {
        let bar = if plain.is_none() { ProgressBar::new(total.max(1)) } else { ProgressBar::hidden() };
        // The time left is unknown ("?", not indicatif's "0s") until an iteration ends.
        let left = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = match state.pos() > done {
                true => write!(w, "{:#}", HumanDuration(state.eta())),
                false => w.write_str("?"),
            };
        };
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} it  {msg}  [{elapsed} < {left}]")
            .map(|style| style.with_key("left", left))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_length(total.max(1));
        bar.set_position(done);
        let plain = plain.map(|out| Plain { out, losses_at: None, line_at: now });
        Self { bar, plain, start: now, total, losses: String::new(), under_way: None }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn metrics_at(&mut self, now: Instant, m: &Metrics, total: u64) {
        self.total = total.max(m.iteration);
        self.bar.set_length(self.total.max(1));
        self.bar.set_position(m.iteration);
        self.losses = progress_message(m);
        self.bar.set_message(self.losses.clone());
        if let Some(u) = &mut self.under_way {
            u.shown = None;
        }
        let Some(plain) = &mut self.plain else { return };
        if plain.losses_at.is_none_or(|t| now - t >= PLAIN_EVERY) || m.iteration >= total {
            let (elapsed, left) = ((now - self.start).as_secs(), self.bar.eta().as_secs());
            let line = format!("iteration {}/{total}  {}  elapsed {elapsed}s, left {left}s", m.iteration, self.losses);
            plain.write(now, &line);
            plain.losses_at = Some(now);
        }
    }

    /// `done` of the `of` critic steps of `iteration` (from 0) taken at `now`.
    fn critic_step_at(&mut self, now: Instant, iteration: u64, done: usize, of: usize) {
        if self.under_way.as_ref().is_none_or(|u| u.iteration != iteration) {
            if self.under_way.as_ref().is_some_and(|u| u.shown.is_some()) {
                self.bar.set_message(self.losses.clone());
            }
            self.under_way = Some(UnderWay { iteration, since: now, shown: None });
            self.bar.set_position(iteration);
        }
        let (current, total) = (iteration + 1, self.total);
        if let Some(plain) = &mut self.plain {
            if now - plain.line_at >= PLAIN_QUIET {
                let elapsed = (now - self.start).as_secs();
                plain.write(
                    now,
                    &format!("iteration {current}/{total} under way: critic step {done}/{of}, elapsed {elapsed}s"),
                );
            }
            return;
        }
        let Some(u) = &mut self.under_way else { return };
        if now - u.since >= LONG_ITERATION && u.shown.is_none_or(|t| now - t >= CRITIC_REDRAW) {
            let critic = format!("iteration {current}: critic step {done}/{of}");
            self.bar.set_message(if self.losses.is_empty() { critic } else { format!("{}  {critic}", self.losses) });
            u.shown = Some(now);
        }
    }
}

impl Plain {
    fn write(&mut self, now: Instant, line: &str) {
        // A closed stderr drops the line; the run goes on.
        let _ = writeln!(self.out, "{line}").and_then(|()| self.out.flush());
        self.line_at = now;
    }
}

/// Losses and speed of one log step, as the bar and the plain lines show them.
fn progress_message(m: &Metrics) -> String {
    let extra = match (m.d_fake, m.wasserstein) {
        (Some(d_fake), _) => format!("D(x) {:.2} D(G(z)) {:.2}", m.d_real.unwrap_or(0.0), d_fake),
        (None, Some(w)) => format!("W {w:.4}"),
        _ => String::new(),
    };
    // Toys have no epochs (their epoch stays 0).
    let epoch = if m.epoch > 0.0 { format!("epoch {:.2}  ", m.epoch) } else { String::new() };
    format!("{epoch}d {:.4}  g {:.4}  {extra}  {:.0} img/s", m.d_loss, m.g_loss, m.images_per_s)
}

impl Observer for TrainBar {
    fn on_metrics(&mut self, m: &Metrics, total: u64) {
        self.metrics_at(Instant::now(), m, total);
    }

    fn on_message(&mut self, message: &str) {
        match &mut self.plain {
            Some(plain) => plain.write(Instant::now(), message),
            // A hidden bar drops what it is asked to print.
            None => self.bar.println(message),
        }
    }

    fn on_critic_step(&mut self, iteration: u64, done: usize, of: usize) {
        self.critic_step_at(Instant::now(), iteration, done, of);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// What plain output wrote, shared with the bar that writes it.
    #[derive(Clone, Default)]
    struct Lines(Rc<RefCell<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn take(&self) -> Vec<String> {
            let text = String::from_utf8(std::mem::take(&mut *self.0.borrow_mut())).unwrap();
            text.lines().map(str::to_string).collect()
        }
    }

    fn metrics(iteration: u64) -> Metrics {
        Metrics {
            iteration,
            epoch: 0.0,
            d_loss: -1.5,
            g_loss: 0.25,
            d_real: None,
            d_fake: None,
            wasserstein: Some(1.5),
            penalty: None,
            wall_time_s: 0.0,
            images_per_s: 64.0,
            collapse: false,
            eval: None,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_feature_pass_says_how_far_it_is_every_tenth_once_it_is_slow() {
        let t0 = Instant::now();
        let mut p = EvalProgress::started(Pass::Features("samples"), t0);
        let lines: Vec<_> = [(50, 1), (100, 2), (200, 4), (300, 6), (320, 7), (400, 8), (1000, 20)]
            .into_iter()
            .filter_map(|(done, s)| p.line(done, 1000, t0 + secs(s)))
            .collect();
        assert_eq!(
            lines,
            [
                "features of samples: 300 / 1000 after 6s, about 14s left",
                "features of samples: 400 / 1000 after 8s, about 12s left"
            ],
            "none before 10 %, while quick, between tenths or at the end"
        );
    }

    /// The metrics' clock starts before FID and KID; the time left is reckoned from
    /// when precision and recall began (their report of 0 done).
    #[test]
    fn precision_recall_say_how_far_they_are_reckoned_from_their_own_start() {
        let t0 = Instant::now();
        let mut p = EvalProgress::started(Pass::Distances, t0);
        let total = 4_900_000_000;
        let lines: Vec<_> = [(0, 6), (245_000_000, 7), (980_000_000, 8), (2_450_000_000, 11), (total, 16)]
            .into_iter()
            .filter_map(|(done, s)| p.line(done, total, t0 + secs(s)))
            .collect();
        assert_eq!(
            lines,
            [
                "precision / recall: 20 % of the distances after 8s, about 8s left",
                "precision / recall: 50 % of the distances after 11s, about 5s left"
            ]
        );
    }

    #[test]
    fn plain_lines_give_the_losses_at_most_every_ten_seconds_and_at_the_end() {
        let (out, t0) = (Lines::default(), Instant::now());
        let mut bar = TrainBar::with_output(30, 0, Some(Box::new(out.clone())), t0);
        bar.metrics_at(t0 + secs(2), &metrics(10), 30);
        bar.metrics_at(t0 + secs(7), &metrics(20), 30);
        let lines = out.take();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("iteration 10/30  d -1.5000  g 0.2500  W 1.5000  64 img/s  elapsed 2s, left "));
        bar.metrics_at(t0 + secs(12), &metrics(25), 30);
        bar.metrics_at(t0 + secs(13), &metrics(30), 30);
        let lines = out.take();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("iteration 25/30 ") && lines[1].starts_with("iteration 30/30 "), "{lines:?}");
    }

    #[test]
    fn plain_output_says_where_a_long_iteration_is_after_thirty_silent_seconds() {
        let (out, t0) = (Lines::default(), Instant::now());
        let mut bar = TrainBar::with_output(2000, 0, Some(Box::new(out.clone())), t0);
        for (s, done) in [(10, 25), (29, 72)] {
            bar.critic_step_at(t0 + secs(s), 0, done, 100);
        }
        assert!(out.take().is_empty());
        bar.critic_step_at(t0 + secs(31), 0, 77, 100);
        assert_eq!(out.take(), ["iteration 1/2000 under way: critic step 77/100, elapsed 31s"]);
        bar.critic_step_at(t0 + secs(55), 0, 100, 100);
        bar.critic_step_at(t0 + secs(60), 1, 1, 100);
        assert!(out.take().is_empty(), "30 s after the last line, not before");
        bar.critic_step_at(t0 + secs(62), 1, 3, 100);
        assert_eq!(out.take(), ["iteration 2/2000 under way: critic step 3/100, elapsed 62s"]);
        // A line with the losses counts as a line.
        bar.metrics_at(t0 + secs(80), &metrics(2), 2000);
        bar.critic_step_at(t0 + secs(100), 2, 50, 100);
        assert_eq!(out.take().len(), 1, "only the losses' line");
    }

    #[test]
    fn the_bar_moves_every_iteration_and_shows_the_critic_steps_of_a_long_one() {
        let t0 = Instant::now();
        let mut bar = TrainBar::with_output(2000, 0, None, t0);
        bar.metrics_at(t0, &metrics(10), 2000);
        let losses = bar.bar.message();
        bar.critic_step_at(t0 + Duration::from_millis(100), 10, 1, 5);
        bar.critic_step_at(t0 + Duration::from_millis(900), 10, 5, 5);
        assert_eq!(bar.bar.message(), losses, "a short iteration shows only the losses");
        bar.critic_step_at(t0 + secs(1), 11, 1, 100);
        assert_eq!(bar.bar.position(), 11, "iterations done");
        bar.critic_step_at(t0 + secs(3), 11, 40, 100);
        assert_eq!(bar.bar.message(), format!("{losses}  iteration 12: critic step 40/100"));
        bar.critic_step_at(t0 + Duration::from_millis(3100), 11, 41, 100);
        assert!(bar.bar.message().ends_with("40/100"), "redrawn at most every 250 ms");
        bar.critic_step_at(t0 + secs(4), 12, 1, 5);
        assert_eq!((bar.bar.message(), bar.bar.position()), (losses.clone(), 12), "the next iteration starts afresh");
        bar.critic_step_at(t0 + secs(6), 12, 2, 5);
        bar.metrics_at(t0 + secs(7), &metrics(20), 2000);
        assert_eq!((bar.bar.message(), bar.bar.position()), (losses, 20), "a log step shows its losses");
    }
}
