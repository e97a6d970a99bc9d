//! The one adversarial training loop. A [`TrainConfig`]'s recipe — objective,
//! optimisers, critic schedule, weight constraint — parameterises it; no family
//! has a loop of its own.
//!
//! One generator iteration (Goodfellow et al. 2014, algorithm 1; Arjovsky et al.
//! 2017, algorithm 1; Gulrajani et al. 2017, algorithm 1): `n_critic(t)` critic
//! steps on fresh real batches and noise (then clipping, for WGAN), followed by one
//! generator step. The generator step draws fresh noise, except for cross-entropy
//! GANs with a single discriminator step, which train the generator on that step's
//! generated batch as the DCGAN reference code does (pytorch/examples/dcgan,
//! dcgan.torch): one generator forward pass per iteration instead of two. All
//! randomness — init, data order, noise, ε, label noise — comes from the run's seed,
//! so a run resumed from a checkpoint continues exactly.
//!
//! What differs between families lives in [`crate::objective`]; how a critic step's
//! gradients are formed, a loss term at a time, in [`crate::critic_step`]; what a run
//! writes (metrics, samples, curves, checkpoints) in [`crate::record`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::{Device, Shape, Tensor, TensorId};
use ganzoo_data::{Batcher, BatcherConfig, ImageDataset};
use ganzoo_models::ParamStore;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use ganzoo_eval::image::{image_metrics, FeatureExtractor, Seen};
use ganzoo_eval::EvalReport;

use crate::checkpoint::{self, Snapshot, TrainState};
use crate::config::{DataSource, TrainConfig};
use crate::critic_step::critic_gradients;
use crate::data_record::DataRecord;
use crate::metrics::Metrics;
use crate::networks::Players;
use crate::objective::{self, scalar, AdversarialObjective, PendingStats, StepStats};
use crate::optim::OptimizerState;
use crate::record::Recorder;
pub use crate::record::{COLLAPSE_D_FAKE, COLLAPSE_STREAK, GRID_SAMPLES};
use crate::replay::{self, CriticInputs, CriticOut, GeneratorInputs, GeneratorOut, StepGraphs};

/// Samples each `--eval-every` measurement takes.
pub const EVAL_SAMPLES: usize = 2000;
/// Generated images fed to the feature network at once during an evaluation.
const EVAL_CHUNK: usize = 250;
/// Mixed into the run's seed for the evaluation's noise and real samples.
const EVAL_SEED: u64 = 0xe7a1_0000_5eed;
use crate::report::RunStatus;
use crate::run_dir::RunDir;
use crate::stream::{DataStream, StreamPosition};
use crate::{Result, TrainError};

/// Receives progress; the command line shows it as a progress bar.
pub trait Observer {
    fn on_metrics(&mut self, metrics: &Metrics, total_iters: u64);
    fn on_message(&mut self, message: &str);
    /// `done` of the `of` critic steps of generator iteration `iteration` (counted from 0) taken.
    fn on_critic_step(&mut self, _iteration: u64, _done: usize, _of: usize) {}
}

/// An observer that shows nothing.
pub struct Silent;

impl Observer for Silent {
    fn on_metrics(&mut self, _: &Metrics, _: u64) {}
    fn on_message(&mut self, _: &str) {}
}

/// How a call to [`Trainer::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped on request (Ctrl-C) after saving a checkpoint.
    Interrupted,
}

pub struct Trainer {
    config: TrainConfig,
    device: Device,
    players: Players,
    objective: Box<dyn AdversarialObjective>,
    opt_g: OptimizerState,
    opt_d: OptimizerState,
    stream: DataStream,
    rng: ChaCha8Rng,
    iteration: u64,
    /// Critic steps of the iteration under way taken (0 between iterations); more only
    /// when a stop came between two of them, or a resume from such a stop.
    critic_steps_done: usize,
    record: Recorder,
    stop: Arc<AtomicBool>,
    image_eval: Option<ImageEval>,
    /// Time spent reading iterations' statistics back ([`Trainer::waited`]).
    waited: Duration,
    /// CUDA graphs of the steps (`GANZOO_CUDA_GRAPHS`), and the variables whose
    /// gradients each step keeps.
    graphs: StepGraphs,
    critic_ids: Vec<TensorId>,
    gen_ids: Vec<TensorId>,
}

/// What `--eval-every` measures an image run with: a feature network (the data set's
/// domain classifier, best on the run's device, where the samples are made)
/// and what it sees in the real test split.
pub struct ImageEval {
    pub net: FeatureExtractor,
    pub real: Seen,
}

impl Trainer {
    /// A fresh run. `train` holds the training images (`None` for toys), recorded in
    /// `RUN/data.json` (without their folder, which only the caller knows: a caller that
    /// writes a [`DataRecord`] of them first keeps it).
    pub fn new(config: TrainConfig, train: Option<ImageDataset>, mut run: RunDir, device: Device) -> Result<Self> {
        run.lock()?;
        let data = train.as_ref().map(|t| DataRecord::of(t, None));
        let recorded = data.as_ref().map(|d| d.check_run(run.path())).transpose()?;
        let t = Self::build(config, train, run, device)?;
        t.run_dir().save_config(&t.config)?;
        if let (Some(data), Some(false)) = (&data, recorded) {
            data.write(t.run_dir().path())?;
        }
        Ok(t)
    }

    /// The trainer at iteration 0, writing nothing.
    fn build(mut config: TrainConfig, train: Option<ImageDataset>, run: RunDir, device: Device) -> Result<Self> {
        config.validate()?;
        let stream = make_stream(&config, train, &device)?;
        let sample = sample_shape(&stream);
        if let [c, h, _] = sample[..] {
            (config.channels, config.image_size) = (Some(c), Some(h));
            config.validate()?;
        }
        if device.is_cpu() && config.precision.activations().is_some() {
            tracing::warn!(
                precision = config.precision.name(),
                "mixed precision on the CPU widens every product to f32 and back and runs Candle's generic ops for the rest: slower than f32"
            );
        }
        let players = Players::build(&config, &sample, &device)?;
        let opt_g = OptimizerState::new(config.optimizer_g, players.gen_store.trainable())?;
        let opt_d = OptimizerState::new(config.optimizer_d, players.critic_store.trainable())?;
        let record = Recorder::new(run, &config, &device)?;
        let ids = |store: &ParamStore| store.trainable().iter().map(|(_, v)| v.as_tensor().id()).collect();
        let (critic_ids, gen_ids) = (ids(&players.critic_store), ids(&players.gen_store));
        Ok(Self {
            graphs: StepGraphs::new(replay::requested(), &device),
            critic_ids,
            gen_ids,
            objective: objective::for_config(&config),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            device,
            players,
            opt_g,
            opt_d,
            stream,
            iteration: 0,
            critic_steps_done: 0,
            record,
            stop: Arc::new(AtomicBool::new(false)),
            image_eval: None,
            waited: Duration::ZERO,
        })
    }

    /// Continues `run` from its newest readable checkpoint (the one `latest` names, else
    /// older ones, newest first, each skipped with a warning). Nothing in the run
    /// directory changes unless a checkpoint is restored; then `config.toml` is
    /// rewritten (its length may have been extended), metrics past the checkpoint are
    /// dropped, and leftovers of interrupted writes are removed. Images other than those
    /// `RUN/data.json` records are refused first (they would change the data order); a
    /// run without the record gets one.
    pub fn resume(mut run: RunDir, config: TrainConfig, train: Option<ImageDataset>, device: Device) -> Result<Self> {
        run.lock()?;
        let data = train.as_ref().map(|t| DataRecord::of(t, None));
        let recorded = data.as_ref().map(|d| d.check_run(run.path())).transpose()?;
        let candidates = checkpoint::candidates(run.path())?;
        if candidates.is_empty() {
            return Err(TrainError::Checkpoint {
                path: run.path().to_path_buf(),
                detail: "has no checkpoint to resume from".into(),
            });
        }
        let mut t = Self::build(config, train, run, device)?;
        t.check_config_unchanged(&candidates)?;
        let mut failures = Vec::new();
        for dir in &candidates {
            match t.restore(dir) {
                Ok(()) => {
                    t.check_not_shortened(dir)?;
                    if !failures.is_empty() {
                        tracing::warn!(checkpoint = %dir.display(), "resumed from an older checkpoint: {}", failures.join("; "));
                    }
                    let run = t.record.run_dir();
                    run.save_config(&t.config)?;
                    run.truncate_metrics(t.iteration)?;
                    if let (Some(data), Some(false)) = (&data, recorded) {
                        data.write(run.path())?;
                    }
                    for p in run.clean_leftovers()? {
                        tracing::info!(leftover = %p.display(), "removed what an interrupted write left");
                    }
                    return Ok(t);
                }
                Err(e) => {
                    tracing::warn!(checkpoint = %dir.display(), "cannot resume from it: {e}");
                    failures.push(e.to_string());
                }
            }
        }
        Err(TrainError::Checkpoint {
            path: t.run_dir().path().to_path_buf(),
            detail: format!("no readable checkpoint: {}", failures.join("; ")),
        })
    }

    /// Refuses a length (`--iters` / `--epochs`, or edited in `config.toml`) that ends the
    /// run before the checkpoint just restored (in memory only: nothing on disk has
    /// changed yet). Falling back to an older checkpoint instead, as for a damaged one,
    /// would drop the metrics past it; keeping it would record a length it exceeds.
    fn check_not_shortened(&self, dir: &Path) -> Result<()> {
        let epochs = self.stream.epochs_done();
        // An iteration under way (a stop between its critic steps) counts: the resume finishes it.
        let started = self.iteration + u64::from(self.critic_steps_done > 0);
        let (asked, needed) = match (self.config.iters, self.config.epochs) {
            (Some(n), _) if started > n => (format!("{n} iterations"), format!("--iters {started}")),
            (None, Some(e)) if epochs > e as f64 => (format!("{e} epochs"), format!("--epochs {}", epochs.ceil())),
            _ => return Ok(()),
        };
        Err(TrainError::Config(format!(
            "{} has trained {} iterations, {epochs:.2} epochs (checkpoint {}), more than the {asked} asked for: a run \
             is never shortened; pass {needed} or more (or set it back in config.toml), or start a new run",
            self.run_dir().path().display(),
            self.iteration,
            dir.display(),
        )))
    }

    /// Refuses a configuration (the run's `config.toml`, perhaps edited by hand) that
    /// differs from the one the newest checkpoint keeping it was trained with, other than
    /// in [`RESUME_MAY_CHANGE`](crate::config::RESUME_MAY_CHANGE): a batch size or recipe
    /// changed under a checkpoint would silently make its state mean something else.
    fn check_config_unchanged(&self, candidates: &[PathBuf]) -> Result<()> {
        let Some((dir, trained)) =
            candidates.iter().find_map(|dir| Some((dir, checkpoint::read_config(dir).ok().flatten()?)))
        else {
            return Ok(());
        };
        let changed = self.config.changed_since(&trained)?;
        if changed.is_empty() {
            return Ok(());
        }
        let list: Vec<String> =
            changed.iter().map(|c| format!("`{}` is {} (trained with {})", c.key, c.now, c.then)).collect();
        Err(TrainError::Config(format!(
            "{}: {}; checkpoint {} was trained otherwise, and a resumed run may change only {}: put the values back, or start a new run",
            self.run_dir().path().join("config.toml").display(),
            list.join(", "),
            dir.display(),
            crate::config::RESUME_MAY_CHANGE.join(", "),
        )))
    }

    /// Restores every piece of state from the checkpoint `dir`, after checking its
    /// counters against the configuration and the metrics.
    fn restore(&mut self, dir: &Path) -> Result<()> {
        let state = checkpoint::read_state(dir)?;
        let history = self.record.run_dir().read_metrics(state.iteration)?;
        self.check_state(&state, &history, &dir.join("state.json"))?;
        checkpoint::load_store(&self.players.gen_store, &dir.join("generator.safetensors"))?;
        checkpoint::load_store(&self.players.critic_store, &dir.join("critic.safetensors"))?;
        for (opt, file, steps) in [
            (&mut self.opt_g, "optimizer_g.safetensors", state.optimizer_g_steps),
            (&mut self.opt_d, "optimizer_d.safetensors", state.optimizer_d_steps),
        ] {
            let path = dir.join(file);
            let max = checkpoint::max_safetensors_bytes(opt.state_elements());
            opt.load_state(&checkpoint::load_tensors(&path, &self.device, max)?, steps, &path)?;
        }
        let word_pos: u128 = state.rng_word_pos.parse().map_err(|_| TrainError::Checkpoint {
            path: dir.join("state.json"),
            detail: format!("bad RNG position '{}'", state.rng_word_pos),
        })?;
        self.rng.set_word_pos(word_pos);
        self.stream.set_position(state.position);
        self.iteration = state.iteration;
        let before = self.config.schedule.critic_steps_before(state.iteration);
        // check_state bounds it by one iteration's critic steps.
        self.critic_steps_done = usize::try_from(u128::from(state.optimizer_d_steps) - before).unwrap_or(0);
        self.record.restore(state.iteration, history, state.wall_time_s, state.collapse_streak);
        tracing::info!(checkpoint = %dir.display(), iteration = state.iteration, "resumed");
        Ok(())
    }

    /// A checkpoint's counters must agree with each other and with the critic schedule;
    /// the metrics, where there are any, must reach its last log step.
    fn check_state(&self, s: &TrainState, history: &[Metrics], path: &Path) -> Result<()> {
        let bad = |detail: String| Err(TrainError::Checkpoint { path: path.to_path_buf(), detail });
        let critic_steps = self.config.schedule.critic_steps_before(s.iteration);
        if s.optimizer_g_steps != s.iteration {
            return bad(format!("{} generator steps for {} iterations", s.optimizer_g_steps, s.iteration));
        }
        // Fewer than the next iteration's critic steps may follow: a stop between two of them.
        let next = self.config.schedule.critic_steps(s.iteration) as u128;
        if !(critic_steps..critic_steps + next).contains(&u128::from(s.optimizer_d_steps)) {
            return bad(format!(
                "{} critic steps, but the schedule takes {critic_steps} in {} iterations (and fewer than {next} more \
                 within the next)",
                s.optimizer_d_steps, s.iteration
            ));
        }
        if !(s.wall_time_s.is_finite() && s.wall_time_s >= 0.0) || s.collapse_streak > s.iteration {
            return bad(format!(
                "impossible counters (wall time {} s, collapse streak {})",
                s.wall_time_s, s.collapse_streak
            ));
        }
        let expected = s.iteration - s.iteration % self.config.log_every;
        if let Some(last) = history.last().filter(|m| m.iteration != expected) {
            return bad(format!(
                "at iteration {} but metrics.jsonl's last line before it is iteration {} (expected {expected})",
                s.iteration, last.iteration
            ));
        }
        // Each critic step reads one real batch: another position would change the data order.
        let expected = self.stream.position_after(s.optimizer_d_steps);
        if expected != Some(s.position) {
            let at = |p: StreamPosition| format!("epoch {}, batch {}", p.epoch, p.batch);
            return bad(format!(
                "the data stream stands at {}, but {} critic steps read {} batches and leave it at {}",
                at(s.position),
                s.optimizer_d_steps,
                s.optimizer_d_steps,
                expected.map_or("a position beyond this machine's range".into(), at)
            ));
        }
        Ok(())
    }

    /// A flag that, once set (by a Ctrl-C handler), stops the run after a checkpoint.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Stops on `stop` instead of the trainer's own flag: one flag for a command that
    /// trains several runs in turn (`figures mode-coverage`).
    pub fn with_stop_flag(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = stop;
        self
    }

    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn run_dir(&self) -> &RunDir {
        self.record.run_dir()
    }

    pub fn players(&self) -> &Players {
        &self.players
    }

    /// Generator iterations the whole run takes (an estimate under a WGAN warm-up schedule).
    pub fn total_iters(&self) -> u64 {
        match (self.config.iters, self.config.epochs, self.stream.batches_per_epoch()) {
            (Some(n), _, _) => n,
            (None, Some(e), Some(b)) => {
                let per_iter = self.config.schedule.n_critic as u64;
                // Saturating: a length near config.toml's limit would wrap to a few
                // iterations, and a linear decay would then train at learning rate 0.
                e.saturating_mul(b as u64).div_ceil(per_iter)
            }
            _ => 0,
        }
    }

    fn finished(&self) -> bool {
        match (self.config.iters, self.config.epochs) {
            (Some(n), _) => self.iteration >= n,
            (None, Some(e)) => self.stream.epochs_done() >= e as f64,
            _ => true,
        }
    }

    /// Measures an image run's quality every `eval_every` iterations with `eval` (toy runs
    /// need nothing).
    pub fn with_image_eval(mut self, eval: ImageEval) -> Self {
        self.image_eval = Some(eval);
        self
    }

    /// Trains until the configured length, or until stopped. However it ends, the
    /// run's report says so (a failure also goes to `warnings.log`).
    pub fn run(&mut self, observer: &mut dyn Observer) -> Result<Outcome> {
        if self.config.eval_every.is_some()
            && self.image_eval.is_none()
            && matches!(self.config.data, DataSource::Images(_))
        {
            return Err(TrainError::Config("eval_every on images needs Trainer::with_image_eval".into()));
        }
        self.record.start()?;
        match self.train_until_done(observer) {
            Ok(outcome) => {
                let status = match outcome {
                    Outcome::Finished => RunStatus::Finished,
                    Outcome::Interrupted => RunStatus::Interrupted,
                };
                self.record.finish(status)?;
                Ok(outcome)
            }
            Err(e) => {
                // The run's own error is the one to report; a second failure while
                // writing the report is only logged.
                if let Err(also) = self.record.finish(RunStatus::Failed(e.to_string())) {
                    tracing::warn!("could not write the report of the failed run: {also}");
                }
                Err(e)
            }
        }
    }

    fn train_until_done(&mut self, observer: &mut dyn Observer) -> Result<Outcome> {
        let total = self.total_iters();
        // An iteration a stop interrupted is finished first, as it would have been.
        while self.critic_steps_done > 0 || !self.finished() {
            if self.stop.load(Ordering::SeqCst) {
                return self.interrupted(observer);
            }
            let Some(stats) = self.step(observer)? else { return self.interrupted(observer) };
            self.iteration += 1;
            let (epoch, log_every) = (self.stream.epochs_done(), self.config.log_every);
            let measuring = Instant::now();
            let eval = self.evaluate_if_due()?;
            if eval.is_some() {
                // Throughput is training's: the measurement's time is not counted.
                self.record.exclude_from_rate(measuring.elapsed());
            }
            let objective = self.objective.as_ref();
            self.record.after_iteration(self.iteration, epoch, &stats, objective, log_every, total, observer, eval)?;
            if self.iteration.is_multiple_of(self.config.sample_every) {
                self.write_samples()?;
            }
            if self.iteration.is_multiple_of(self.config.checkpoint_every) {
                self.checkpoint()?;
            }
        }
        // The last iteration's grid and checkpoint, unless the loop has just written them.
        if !self.iteration.is_multiple_of(self.config.sample_every) {
            self.write_samples()?;
        }
        if !self.iteration.is_multiple_of(self.config.checkpoint_every) {
            self.checkpoint()?;
        }
        Ok(Outcome::Finished)
    }

    /// Sample quality when `eval_every` divides the iteration: the toy metrics, or the
    /// image metrics against the real test split, of [`EVAL_SAMPLES`] samples (fixed noise
    /// and real draws, so values of one run compare over time).
    fn evaluate_if_due(&self) -> Result<Option<EvalReport>> {
        let Some(k) = self.config.eval_every else { return Ok(None) };
        if !self.iteration.is_multiple_of(k) {
            return Ok(None);
        }
        let seed = self.config.seed ^ EVAL_SEED;
        let z = noise(&mut ChaCha8Rng::seed_from_u64(seed), EVAL_SAMPLES, self.config.latent, &self.device)?;
        let failed =
            |e: ganzoo_eval::EvalError| TrainError::Config(format!("evaluation at iteration {}: {e}", self.iteration));
        let report = match (&self.config.data, &self.image_eval) {
            (DataSource::Toy(toy), _) => {
                let points: Vec<f32> = self.generate(&z)?.flatten_all()?.to_vec1()?;
                EvalReport::Toy(ganzoo_eval::toy_metrics(*toy, &points, seed).map_err(failed)?)
            }
            (DataSource::Images(_), Some(eval)) => {
                let mut fake = eval.net.nothing_seen();
                for start in (0..EVAL_SAMPLES).step_by(EVAL_CHUNK) {
                    let images = self.generate(&z.narrow(0, start, EVAL_CHUNK.min(EVAL_SAMPLES - start))?)?;
                    fake.extend(eval.net.see(&images).map_err(failed)?);
                }
                EvalReport::Image(image_metrics(&eval.net.name(), &fake, &eval.real, seed).map_err(failed)?)
            }
            (DataSource::Images(_), None) => return Ok(None),
        };
        Ok(Some(report))
    }

    /// Time the iterations so far spent reading their statistics back: on a GPU mostly
    /// the wait for the work they queued, so an iteration's time less this is the host's
    /// (what `ganzoo bench` reports as `host ms`).
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// How many of the steps' CUDA graphs replay (`GANZOO_CUDA_GRAPHS`; `None` where
    /// not asked for or not on a GPU). 0 after warm-up: recording failed or was given
    /// up, and every step runs eagerly (the log says why).
    pub fn cuda_graphs_replaying(&self) -> Option<usize> {
        self.graphs.replaying()
    }

    /// A checkpoint of where the run stands (between iterations, or between two critic
    /// steps of one), said to `observer`.
    fn interrupted(&mut self, observer: &mut dyn Observer) -> Result<Outcome> {
        self.checkpoint()?;
        let within = match self.critic_steps_done {
            0 => String::new(),
            k => {
                format!(" and {k} of the next one's {} critic steps", self.config.schedule.critic_steps(self.iteration))
            }
        };
        observer.on_message(&format!("interrupted at iteration {}{within}: checkpoint saved", self.iteration));
        Ok(Outcome::Interrupted)
    }

    /// One generator iteration and nothing else — no metrics, samples or
    /// checkpoints (what `ganzoo bench` times); its losses.
    pub fn train_iteration(&mut self) -> Result<StepStats> {
        let stats = self.step(&mut Silent)?.ok_or_else(|| TrainError::Config("stopped within an iteration".into()))?;
        self.iteration += 1;
        Ok(stats)
    }

    /// One generator iteration: its critic steps (those not yet taken), then the
    /// generator step; its statistics read back at the end (a non-finite loss stops
    /// training there, before anything is written: checkpoints refuse non-finite
    /// weights). `None` when a stop came between two critic steps: WGAN's warm-up
    /// iterations take 100, tens of seconds on a CPU, longer than `docker stop` or a
    /// batch scheduler waits after SIGTERM; the checkpoint then records the steps taken.
    fn step(&mut self, observer: &mut dyn Observer) -> Result<Option<StepStats>> {
        let mut stats = PendingStats::default();
        let factor = self.config.lr_decay.factor(self.iteration, self.total_iters());
        self.opt_d.set_lr_scale(factor);
        self.opt_g.set_lr_scale(factor);
        let critic_steps = self.config.schedule.critic_steps(self.iteration);
        let reuse = self.objective.reuses_fake_batch(critic_steps);
        let mut last_fake = None;
        for i in self.critic_steps_done..critic_steps {
            if i > 0 && self.stop.load(Ordering::SeqCst) {
                return Ok(None);
            }
            last_fake = self.critic_step(reuse, i + 1 < critic_steps, &mut stats)?;
            self.critic_steps_done = i + 1;
            observer.on_critic_step(self.iteration, i + 1, critic_steps);
        }
        let out = self.generator_step(last_fake)?;
        stats.g_loss = Some(out.loss);
        self.opt_g.step(&out.grads)?;
        self.critic_steps_done = 0;
        drop(out.grads);
        let reading = Instant::now();
        let stats = stats.read()?;
        self.waited += reading.elapsed();
        self.finite(stats.d_loss, "critic loss")?;
        self.finite(stats.g_loss, "generator loss")?;
        Ok(Some(stats))
    }

    /// One critic update; with `keep_generated`, returns the generated batch it used, still
    /// attached to the generator, for the generator step. Otherwise the generator's
    /// graph is dropped before the critic's passes are built (the batch is detached).
    /// `more`: critic steps follow in this iteration.
    fn critic_step(&mut self, keep_generated: bool, more: bool, stats: &mut PendingStats) -> Result<Option<Tensor>> {
        self.objective.before_critic_step(&self.players.critic_store)?;
        let real = self.stream.next_batch(&mut self.rng)?;
        let b = real.dim(0)?;
        let z = noise(&mut self.rng, b, self.config.latent, &self.device)?;
        let sigma = self.instance_sigma();
        let real_noise = instance_noise(real.shape(), sigma, &mut self.rng, &self.device)?;
        let real = noisy(&real, real_noise.as_ref())?;
        // Drawn here, in the order the step uses them, so that the step itself draws nothing.
        let fake_noise = instance_noise(real.shape(), sigma, &mut self.rng, &self.device)?;
        let drawn = self.objective.critic_draws(&real, &mut self.rng)?;
        let inputs = CriticInputs { real, z, fake_noise, drawn };
        let (players, objective, device) = (&self.players, self.objective.as_ref(), &self.device);
        let ids = &self.critic_ids;
        let step = |inputs: &CriticInputs| -> Result<CriticOut> {
            let generated = players.gen.forward_t(&inputs.z, true)?;
            let fake = noisy(&generated.detach(), inputs.fake_noise.as_ref())?;
            let mut stats = PendingStats::default();
            let (batches, drawn) = ((&inputs.real, &fake), inputs.drawn.as_ref());
            let grads = critic_gradients(objective, &players.critic, batches, drawn, &mut stats)?;
            Ok(CriticOut { grads: replay::keep(grads, ids), stats, generated: keep_generated.then_some(generated) })
        };
        let (out, replayed) = match self.graphs.critic(keep_generated, &inputs)? {
            Some(s) => (s.recording.run(device, &self.rng, || step(&s.inputs))?, s.recording.is_replaying()),
            None => (step(&inputs)?, false),
        };
        self.opt_d.step(&out.grads)?;
        drop(out.grads);
        self.objective.after_critic_step(&self.players.critic_store)?;
        // A replay rewrites its loss: the first step's is copied if more steps follow.
        let first = match &out.stats.d_loss {
            Some(loss) if replayed && more => Some(loss.copy()?),
            loss => loss.clone(),
        };
        stats.first_d_loss = stats.first_d_loss.take().or(first);
        let s = out.stats;
        stats.d_loss = s.d_loss.or(stats.d_loss.take());
        stats.d_real = s.d_real.or(stats.d_real.take());
        stats.d_fake = s.d_fake.or(stats.d_fake.take());
        stats.penalty = s.penalty.or(stats.penalty.take());
        stats.real_seen += b;
        Ok(out.generated)
    }

    /// The generator's gradients and loss, on the last critic step's generated batch
    /// where it kept one, else on fresh noise.
    fn generator_step(&mut self, kept: Option<Tensor>) -> Result<GeneratorOut> {
        let (input, from_kept) = match kept {
            Some(fake) => (fake, true),
            None => (noise(&mut self.rng, self.config.batch_size, self.config.latent, &self.device)?, false),
        };
        // Drawn here, after the noise as before, so that the step itself draws nothing: the
        // generated batch's instance noise, shaped as the kept batch or as the data's batch.
        let generated: Shape = if from_kept {
            input.shape().clone()
        } else {
            [vec![input.dim(0)?], sample_shape(&self.stream)].concat().into()
        };
        let fake_noise = instance_noise(&generated, self.instance_sigma(), &mut self.rng, &self.device)?;
        let inputs = GeneratorInputs { input, fake_noise };
        let (players, objective, device, ids) = (&self.players, self.objective.as_ref(), &self.device, &self.gen_ids);
        let step = |inputs: &GeneratorInputs| -> Result<GeneratorOut> {
            let fake = if from_kept { inputs.input.clone() } else { players.gen.forward_t(&inputs.input, true)? };
            let fake = noisy(&fake, inputs.fake_noise.as_ref())?;
            // The critic's weights get no gradient in this step: none is computed.
            let fake_out = players.critic.frozen().forward_t(&fake, true)?;
            let loss = objective.generator_loss(&fake_out)?;
            Ok(GeneratorOut { grads: replay::keep(loss.backward()?, ids), loss: loss.detach() })
        };
        match self.graphs.generator(&inputs, from_kept)? {
            Some(s) => s.recording.run(device, &self.rng, || step(&s.inputs)),
            None => step(&inputs),
        }
    }

    /// σ of the instance noise at this iteration, decaying linearly from
    /// `instance_noise` to 0 over the run; `None` without instance noise.
    fn instance_sigma(&self) -> Option<f64> {
        let sigma0 = self.config.tricks.instance_noise;
        (sigma0 != 0.0).then(|| sigma0 * (1.0 - self.iteration as f64 / self.total_iters().max(1) as f64).max(0.0))
    }

    fn finite(&self, value: f64, what: &'static str) -> Result<()> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(self.non_finite(what, value))
        }
    }

    /// The generator's output for noise `z`, batch norm in evaluation mode.
    pub fn generate(&self, z: &Tensor) -> Result<Tensor> {
        Ok(self.players.gen.forward_t(z, false)?)
    }

    fn write_samples(&mut self) -> Result<()> {
        self.record.write_samples(self.iteration, &self.players, &self.device)
    }

    fn checkpoint(&mut self) -> Result<()> {
        self.check_weights_finite()?;
        let snap = Snapshot {
            gen: &self.players.gen_store,
            critic: &self.players.critic_store,
            optimizer_g: self.opt_g.state_tensors(),
            optimizer_d: self.opt_d.state_tensors(),
            state: TrainState {
                iteration: self.iteration,
                position: self.stream.position(),
                rng_word_pos: self.rng.get_word_pos().to_string(),
                optimizer_g_steps: self.opt_g.steps_taken(),
                optimizer_d_steps: self.opt_d.steps_taken(),
                wall_time_s: self.record.wall_time_s(),
                collapse_streak: self.record.collapse_streak(),
            },
            config: &self.config,
        };
        self.record.checkpoint(&snap)?;
        Ok(())
    }
}

impl Trainer {
    fn non_finite(&self, what: &'static str, value: f64) -> TrainError {
        let checkpoint = checkpoint::latest(self.run_dir().path()).ok().flatten();
        TrainError::NonFinite { iteration: self.iteration, what, value, checkpoint }
    }

    /// Refuses to checkpoint overflowed weights: the last good checkpoint must stay the latest.
    fn check_weights_finite(&self) -> Result<()> {
        for store in [&self.players.gen_store, &self.players.critic_store] {
            for (_, var) in store.trainable() {
                let max = scalar(&var.abs()?.flatten_all()?.max(0)?)?;
                if !max.is_finite() {
                    return Err(self.non_finite("weight", max));
                }
            }
        }
        Ok(())
    }
}

/// `σ N(0, 1)` instance noise shaped `shape`; `None`, drawing nothing, without instance noise.
fn instance_noise(shape: &Shape, sigma: Option<f64>, rng: &mut ChaCha8Rng, device: &Device) -> Result<Option<Tensor>> {
    let Some(sigma) = sigma else {
        return Ok(None);
    };
    let n: Vec<f32> = (0..shape.elem_count()).map(|_| (sigma * rng.sample::<f64, _>(StandardNormal)) as f32).collect();
    Ok(Some(Tensor::from_vec(n, shape, device)?))
}

/// `x + noise`, or `x` itself.
fn noisy(x: &Tensor, noise: Option<&Tensor>) -> Result<Tensor> {
    Ok(match noise {
        Some(n) => (x + n)?,
        None => x.clone(),
    })
}

/// `n × latent` standard normal noise from `rng`.
pub fn noise(rng: &mut ChaCha8Rng, n: usize, latent: usize, device: &Device) -> Result<Tensor> {
    let v: Vec<f32> = (0..n * latent).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
    Ok(Tensor::from_vec(v, (n, latent), device)?)
}

fn make_stream(config: &TrainConfig, train: Option<ImageDataset>, device: &Device) -> Result<DataStream> {
    match (&config.data, train) {
        (DataSource::Toy(toy), _) => Ok(DataStream::Toy {
            toy: *toy,
            batch_size: config.batch_size,
            device: device.clone(),
            position: Default::default(),
        }),
        (DataSource::Images(spec), Some(data)) => {
            let data = match config.image_size {
                Some(s) if s != data.shape().height || s != data.shape().width => data.resized(s)?,
                _ => data,
            };
            let batcher = Batcher::new(
                data,
                BatcherConfig { batch_size: config.batch_size, drop_last: true, seed: config.seed },
                device.clone(),
            )
            .map_err(|e| TrainError::Config(format!("{spec}: {e}")))?;
            Ok(DataStream::Images { batcher, position: Default::default() })
        }
        (DataSource::Images(spec), None) => Err(TrainError::Config(format!("{spec}: no training images were given"))),
    }
}

fn sample_shape(stream: &DataStream) -> Vec<usize> {
    match stream {
        DataStream::Images { batcher, .. } => {
            let s = batcher.data().shape();
            vec![s.channels, s.height, s.width]
        }
        DataStream::Toy { .. } => vec![2],
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use ganzoo_data::{DatasetSpec, ImageDataset, ImageShape, KnownDataset, ToyDistribution};

    use super::Trainer;
    use crate::config::{DataSource, Family, TrainConfig};
    use crate::replay::StepGraphs;
    use crate::RunDir;

    /// 48 noisy 28×28 images.
    fn images() -> ImageDataset {
        let pixels = (0..48 * 784).map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let shape = ImageShape { channels: 1, height: 28, width: 28 };
        ImageDataset::new(pixels, vec![0; 48], shape, vec!["x".into()]).unwrap()
    }

    /// With graphs asked for where recording cannot work (the CPU), every step runs
    /// eagerly on inputs staged at fixed addresses and its outputs merged into the
    /// iteration's statistics: the same losses and weights, bit for bit, as the plain
    /// loop, for every family (one and five critic steps, a kept generated batch or fresh
    /// noise, the penalty's ε, label smoothing, and the draws of label noise and of
    /// instance noise made before the steps and staged).
    #[test]
    fn staged_steps_train_exactly_as_the_plain_loop() {
        let mnist = DataSource::Images(DatasetSpec::Known(KnownDataset::Mnist));
        let toy = DataSource::Toy(ToyDistribution::EightGaussians);
        // Label noise, instance noise.
        let cases = [
            (Family::Gan, &mnist, 0.0, 0.0),
            (Family::Gan, &mnist, 0.2, 0.1),
            (Family::Dcgan, &mnist, 0.0, 0.0),
            (Family::Dcgan, &mnist, 0.2, 0.1),
            (Family::Wgan, &mnist, 0.0, 0.0),
            (Family::Wgan, &mnist, 0.0, 0.1),
            (Family::WganGp, &toy, 0.0, 0.0),
            (Family::WganGp, &toy, 0.0, 0.1),
        ];
        for (family, data, label_noise, instance_noise) in cases {
            let mut c = TrainConfig::preset(family, data.clone());
            (c.ngf, c.ndf, c.batch_size, c.epochs, c.iters) = (8, 8, 16, None, Some(4));
            (c.tricks.label_noise, c.tricks.instance_noise) = (label_noise, instance_noise);
            c.schedule.warmup = None;
            let run = |staged: bool| {
                let dir = tempfile::tempdir().unwrap();
                let run = RunDir::create(&dir.path().join("run"), false).unwrap();
                let train = matches!(data, DataSource::Images(_)).then(images);
                let mut t = Trainer::new(c.clone(), train, run, Device::Cpu).unwrap();
                if staged {
                    t.graphs = StepGraphs::forced();
                }
                let stats: Vec<_> = (0..4).map(|_| format!("{:?}", t.train_iteration().unwrap())).collect();
                let weights: Vec<Vec<f32>> = t
                    .players
                    .gen_store
                    .trainable()
                    .iter()
                    .map(|(_, v)| v.flatten_all().unwrap().to_vec1().unwrap())
                    .collect();
                assert_eq!(t.cuda_graphs_replaying(), staged.then_some(0), "{family:?}");
                (stats, weights)
            };
            assert_eq!(run(true), run(false), "{family:?}");
        }
    }
}
