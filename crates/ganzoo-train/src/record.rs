//! A run's bookkeeping, kept apart from the training loop: metrics lines, collapse
//! warnings, sample grids, charts, the HTML report and checkpoint files in the [`RunDir`].

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use ganzoo_models::norm::BnMode;
use ganzoo_tensorboard::{EventWriter, Scalar};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, Snapshot};
use crate::config::{DataSource, TrainConfig};
use crate::metrics::Metrics;
use crate::networks::Players;
use crate::objective::{AdversarialObjective, StepStats};
use crate::plot;
use crate::report::{self, RunStatus, RunView};
use crate::run_dir::{write_atomic, RunDir};
use crate::trainer::{noise, Observer};

/// The run's TensorBoard folder.
pub const TENSORBOARD_DIR: &str = "tb";
use crate::Result;

/// D(G(z)) below this, for [`COLLAPSE_STREAK`] iterations in a row, is reported as a collapse.
pub const COLLAPSE_D_FAKE: f64 = 1e-3;
pub const COLLAPSE_STREAK: u64 = 50;
/// Generated samples in each grid.
pub const GRID_SAMPLES: usize = 64;
/// Real and generated points in a toy run's sample plot.
const TOY_POINTS: usize = 512;
/// Charts are redrawn at a log step or checkpoint only if this long has passed since the
/// last drawing (drawing takes tens of milliseconds; a toy run logs every few); always
/// at the end.
const CHART_PERIOD: Duration = Duration::from_secs(10);

/// Everything a run writes besides the networks' state.
pub struct Recorder {
    run: RunDir,
    config: TrainConfig,
    /// Generator iterations of the whole run (the trainer's estimate), for the report.
    total: Option<u64>,
    charts_drawn: Option<Instant>,
    /// TensorBoard events (`tb/`), opened at the first event this process writes.
    events: Option<EventWriter>,
    /// The iteration this process resumed from (a TensorBoard session start there).
    resumed_from: u64,
    history: Vec<Metrics>,
    collapse_streak: u64,
    /// Wall time of the run before this process took it over.
    wall_offset: f64,
    started: Instant,
    last_log: Instant,
    seen_since_log: usize,
    /// The noise of every sample grid, so grids of one run are comparable.
    fixed_noise: Tensor,
}

impl Recorder {
    pub fn new(run: RunDir, config: &TrainConfig, device: &Device) -> Result<Self> {
        let mut fixed = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_5a3b_1e00);
        let fixed_noise = noise(&mut fixed, GRID_SAMPLES, config.latent, device)?;
        let now = Instant::now();
        Ok(Self {
            run,
            config: config.clone(),
            total: None,
            charts_drawn: None,
            events: None,
            resumed_from: 0,
            history: Vec::new(),
            collapse_streak: 0,
            wall_offset: 0.0,
            started: now,
            last_log: now,
            seen_since_log: 0,
            fixed_noise,
        })
    }

    /// Continues from a checkpoint's counters and the metrics logged up to it.
    pub fn restore(&mut self, iteration: u64, history: Vec<Metrics>, wall_time_s: f64, collapse_streak: u64) {
        (self.history, self.wall_offset, self.collapse_streak) = (history, wall_time_s, collapse_streak);
        self.resumed_from = iteration;
    }

    /// The run's TensorBoard writer (`None` with `tensorboard = false`): a new event file
    /// per process; a resumed run's starts with a session start after its checkpoint, so
    /// TensorBoard drops what the interrupted process logged past it.
    fn events(&mut self) -> Result<Option<&mut EventWriter>> {
        if !self.config.tensorboard {
            return Ok(None);
        }
        if self.events.is_none() {
            let mut writer = EventWriter::create(&self.run.path().join(TENSORBOARD_DIR))?;
            if self.resumed_from > 0 {
                writer.session_start(self.resumed_from + 1)?;
            }
            self.events = Some(writer);
        }
        Ok(self.events.as_mut())
    }

    /// Starts the clocks of a call to `Trainer::run`, and forgets how an earlier call ended.
    pub fn start(&mut self) -> Result<()> {
        (self.started, self.last_log, self.seen_since_log) = (Instant::now(), Instant::now(), 0);
        report::save_ending(self.run.path(), &RunStatus::Training)
    }

    /// Leaves `spent` (an evaluation) out of the next log step's throughput.
    pub fn exclude_from_rate(&mut self, spent: Duration) {
        self.last_log += spent;
    }

    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }

    pub fn history(&self) -> &[Metrics] {
        &self.history
    }

    pub fn collapse_streak(&self) -> u64 {
        self.collapse_streak
    }

    /// Seconds the run has trained, over all the processes that trained it.
    pub fn wall_time_s(&self) -> f64 {
        self.wall_offset + self.started.elapsed().as_secs_f64()
    }

    /// After iteration `iteration`: collapse tracking, and every `log_every` iterations
    /// a metrics line (file, log, observer).
    /// `eval` (measured by the trainer when due) joins that line.
    #[allow(clippy::too_many_arguments)]
    pub fn after_iteration(
        &mut self,
        iteration: u64,
        epoch: f64,
        stats: &StepStats,
        objective: &dyn AdversarialObjective,
        log_every: u64,
        total: u64,
        observer: &mut dyn Observer,
        eval: Option<ganzoo_eval::EvalReport>,
    ) -> Result<()> {
        self.seen_since_log += stats.real_seen;
        let collapse = objective.reports_collapse() && self.track_collapse(iteration, stats, observer)?;
        if !iteration.is_multiple_of(log_every) {
            return Ok(());
        }
        let rate = self.seen_since_log as f64 / self.last_log.elapsed().as_secs_f64().max(1e-9);
        (self.last_log, self.seen_since_log) = (Instant::now(), 0);
        let mut m = Metrics {
            iteration,
            epoch,
            d_loss: stats.d_loss,
            g_loss: stats.g_loss,
            d_real: None,
            d_fake: None,
            wasserstein: None,
            penalty: None,
            wall_time_s: self.wall_time_s(),
            images_per_s: rate,
            collapse,
            eval,
        };
        objective.record(stats, &mut m);
        self.run.append_metrics(&m)?;
        tracing::info!(iteration = m.iteration, d_loss = m.d_loss, g_loss = m.g_loss, "step");
        observer.on_metrics(&m, total);
        let unit = report::unit_of(&self.config);
        let scalars: Vec<Scalar> = m.scalars(unit).into_iter().map(|(tag, v)| Scalar::new(tag, v)).collect();
        if let Some(events) = self.events()? {
            events.scalars(iteration, &scalars)?;
        }
        self.history.push(m);
        self.total = (total > 0).then_some(total);
        self.refresh(false)
    }

    /// Redraws the charts (when `force`, or when [`CHART_PERIOD`] has passed) and
    /// rewrites `report.html` as a run still training.
    fn refresh(&mut self, force: bool) -> Result<()> {
        if force || self.charts_drawn.is_none_or(|t| t.elapsed() >= CHART_PERIOD) {
            self.draw_charts()?;
            self.charts_drawn = Some(Instant::now());
        }
        self.write_report(RunStatus::Training)
    }

    fn draw_charts(&self) -> Result<()> {
        plot::write_charts(self.run.path(), &self.history, report::unit_of(&self.config))
    }

    fn write_report(&self, status: RunStatus) -> Result<()> {
        report::write_report(&RunView {
            name: report::run_name(self.run.path()),
            path: self.run.path().to_path_buf(),
            config: Cow::Borrowed(&self.config),
            history: Cow::Borrowed(&self.history),
            status,
            total_iters: self.total,
        })
    }

    /// The run has ended (`status`): final charts and report.
    pub fn finish(&mut self, status: RunStatus) -> Result<()> {
        if let RunStatus::Failed(why) = &status {
            self.run.append_warning(why)?;
        }
        report::save_ending(self.run.path(), &status)?;
        self.draw_charts()?;
        self.write_report(status)
    }

    fn track_collapse(&mut self, iteration: u64, s: &StepStats, observer: &mut dyn Observer) -> Result<bool> {
        self.collapse_streak = if s.d_fake < COLLAPSE_D_FAKE { self.collapse_streak + 1 } else { 0 };
        if self.collapse_streak == COLLAPSE_STREAK {
            let msg = format!(
                "collapse: D(G(z)) < {COLLAPSE_D_FAKE} for {COLLAPSE_STREAK} iterations (now {:.2e}, g_loss {:.2}); the discriminator rejects every sample",
                s.d_fake, s.g_loss
            );
            tracing::warn!("{msg}");
            observer.on_message(&msg);
            self.run.append_warning(&format!("iteration {iteration}: {msg}"))?;
        }
        Ok(self.collapse_streak >= COLLAPSE_STREAK)
    }

    /// `samples/iter-N.png`: a grid of the fixed noise's images, or for toys real and
    /// generated points over the critic's value.
    pub fn write_samples(&mut self, iteration: u64, players: &Players, device: &Device) -> Result<()> {
        let path = self.run.samples_dir().join(sample_name(iteration));
        let config = &self.config;
        match &config.data {
            DataSource::Images(_) => {
                // Batch statistics of the fixed batch (as the DCGAN reference does), without
                // touching the running statistics, so sampling never changes training.
                let fake = players.gen.forward_mode(&self.fixed_noise, BnMode::BatchStats)?;
                ganzoo_data::grid::save_tensor_grid(&fake, 8, &path)?;
            }
            DataSource::Toy(toy) => {
                let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ iteration);
                let real = toy.sample(TOY_POINTS, &mut rng);
                let z = noise(&mut rng, TOY_POINTS, config.latent, device)?;
                let fake: Vec<f32> = players.gen.forward_t(&z, false)?.flatten_all()?.to_vec1()?;
                let title = format!("{} — iteration {iteration}", report::run_name(self.run.path()));
                write_atomic(&path, &plot::toy_surface_png(Some(&players.critic), device, &real, &fake, &title)?)?;
            }
        }
        if self.config.tensorboard {
            let png = std::fs::read(&path).map_err(crate::error::io_err(&path))?;
            if let Some(events) = self.events()? {
                events.png(iteration, "samples", &png)?;
            }
        }
        Ok(())
    }

    /// Writes a checkpoint (atomically) and the report (the charts if due).
    pub fn checkpoint(&mut self, snap: &Snapshot<'_>) -> Result<PathBuf> {
        let dir = checkpoint::save(self.run.path(), snap)?;
        tracing::info!(checkpoint = %dir.display(), "saved");
        self.refresh(false)?;
        Ok(dir)
    }
}

/// The file name in `samples/` of the grid at `iteration`.
pub fn sample_name(iteration: u64) -> String {
    format!("iter-{iteration:08}.png")
}

/// The iteration in a grid's file name, for names [`sample_name`] writes and no others
/// (a user's `iter-best.png` beside them is neither shown nor removed).
pub fn sample_iteration(name: &str) -> Option<u64> {
    let n = name.strip_prefix("iter-")?.strip_suffix(".png")?.parse().ok()?;
    (sample_name(n) == name).then_some(n)
}
