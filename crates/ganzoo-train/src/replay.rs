//! CUDA graphs (opt-in, `GANZOO_CUDA_GRAPHS=1`): a step's launches recorded once, then
//! replayed with one launch.
//!
//! A small model's iteration on a GPU is bound by the host issuing a few hundred
//! launches (docs/performance.md, *CUDA*): a replayed graph costs the host one. A
//! [`Recording`] runs its closure eagerly once (the warm-up: modules loaded, cuDNN plans
//! and Candle's small uploads cached), records it on the next call (stream capture) and
//! from then on replays it. The closure's inputs must live at fixed addresses (tensors
//! staged by the caller before each call) and its outputs are the tensors it returned
//! while recorded, rewritten by every replay. What varies from step to step on the host
//! (learning rates, Adam's step count, clipping) stays outside, in eager launches.
//!
//! A step that drew from the run's RNG could not be replayed (its draws would be frozen),
//! so a step draws nothing: the trainer draws what it needs before it and stages the draws
//! with its inputs, and [`Recording::run`] holds the RNG borrowed while the step runs, so a
//! step that drew from it would not compile. A recording that fails runs its closure
//! eagerly ever after, as every closure runs on the CPU.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, TensorId};
use rand_chacha::ChaCha8Rng;

use crate::objective::PendingStats;
use crate::Result;

/// Outputs that a replay rewrites in place: a copy sharing their storage.
pub trait Shared {
    fn share(&self) -> Self;
}

impl Shared for Tensor {
    fn share(&self) -> Self {
        self.clone()
    }
}

impl<T: Shared> Shared for Option<T> {
    fn share(&self) -> Self {
        self.as_ref().map(Shared::share)
    }
}

impl Shared for GradStore {
    fn share(&self) -> Self {
        let mut copy = GradStore::default();
        for id in self.get_ids() {
            if let Some(g) = self.get_id(*id) {
                copy.insert_id(*id, g.clone());
            }
        }
        copy
    }
}

/// Whether `GANZOO_CUDA_GRAPHS` asks for graphs (`1`, `on`, `true`); anything else, or
/// unset, leaves every launch eager.
pub fn requested() -> bool {
    asks(std::env::var("GANZOO_CUDA_GRAPHS").ok().as_deref())
}

fn asks(value: Option<&str>) -> bool {
    value.is_some_and(|v| matches!(v.trim(), "1" | "on" | "true"))
}

enum State<T> {
    /// Next call: eager (the warm-up).
    Cold,
    /// Next call: recorded, then replayed.
    Warm,
    Recorded {
        graph: graph::Graph,
        outputs: T,
    },
    /// Eager for good.
    Off,
}

/// One closure's recording; `name` says which in logs.
pub struct Recording<T> {
    name: &'static str,
    state: State<T>,
}

impl<T: Shared> Recording<T> {
    /// Graphs where `wanted` and `device` is a GPU; else every call runs eagerly.
    pub fn new(name: &'static str, wanted: bool, device: &Device) -> Self {
        let state = if wanted && device.is_cuda() { State::Cold } else { State::Off };
        Self { name, state }
    }

    /// A recording that tries to record wherever it runs (tests of the way back to eager).
    #[cfg(test)]
    fn cold(name: &'static str) -> Self {
        Self { name, state: State::Cold }
    }

    /// Whether calls replay a graph now.
    pub fn is_replaying(&self) -> bool {
        self.recorded().is_some()
    }

    /// The outputs every replay rewrites, once recorded.
    fn recorded(&self) -> Option<&T> {
        match &self.state {
            State::Recorded { outputs, .. } => Some(outputs),
            _ => None,
        }
    }

    /// `step`'s outputs for this call: run eagerly, or recorded and replayed, or replayed.
    ///
    /// `_rng`, the run's RNG, stays borrowed while `step` runs, so `step` cannot draw from
    /// it: what a step needs is drawn before it (a recording would freeze its draws).
    ///
    /// ```
    /// # use candle_core::{Device, Tensor};
    /// # use ganzoo_train::replay::Recording;
    /// # use rand::{Rng, SeedableRng};
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// let mut recording = Recording::<Tensor>::new("step", true, &Device::Cpu);
    /// let drawn = Tensor::new(&[rng.random::<f32>()], &Device::Cpu)?;
    /// recording.run(&Device::Cpu, &rng, || Ok((&drawn * 2.0)?))?;
    /// # Ok::<(), ganzoo_train::TrainError>(())
    /// ```
    ///
    /// The same step drawing inside itself does not compile:
    ///
    /// ```compile_fail,E0502
    /// # use candle_core::{Device, Tensor};
    /// # use ganzoo_train::replay::Recording;
    /// # use rand::{Rng, SeedableRng};
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// let mut recording = Recording::<Tensor>::new("step", true, &Device::Cpu);
    /// recording.run(&Device::Cpu, &rng, || Ok((Tensor::new(&[rng.random::<f32>()], &Device::Cpu)? * 2.0)?))?;
    /// # Ok::<(), ganzoo_train::TrainError>(())
    /// ```
    pub fn run(&mut self, device: &Device, _rng: &ChaCha8Rng, mut step: impl FnMut() -> Result<T>) -> Result<T> {
        match &self.state {
            State::Off => step(),
            State::Recorded { graph, outputs } => {
                graph.replay()?;
                Ok(outputs.share())
            }
            State::Cold => {
                let outputs = graph::with_upload_cache(device, &mut step)?;
                self.state = State::Warm;
                Ok(outputs)
            }
            State::Warm => match graph::record(device, &mut step) {
                Ok((graph, outputs)) => {
                    graph.replay()?;
                    let mine = outputs.share();
                    self.state = State::Recorded { graph, outputs };
                    tracing::info!(step = self.name, "recorded as a CUDA graph");
                    Ok(mine)
                }
                Err(e) => {
                    tracing::warn!(step = self.name, "recording a CUDA graph failed, eager from now on: {e}");
                    self.state = State::Off;
                    step()
                }
            },
        }
    }
}

/// A critic step's inputs: the real batch (with its instance noise), the generator's
/// noise, and what was drawn for the step beforehand — the instance noise for its
/// generated batch and the objective's draws (noisy labels, the penalty's ε) — so that
/// the step itself draws nothing.
pub struct CriticInputs {
    pub real: Tensor,
    pub z: Tensor,
    pub fake_noise: Option<Tensor>,
    pub drawn: Option<Tensor>,
}

/// A critic step's outputs: its critic's gradients, its statistics, and (for the
/// generator step to train on) the generated batch, attached to the generator.
pub struct CriticOut {
    pub grads: GradStore,
    pub stats: PendingStats,
    pub generated: Option<Tensor>,
}

impl Shared for CriticOut {
    fn share(&self) -> Self {
        Self { grads: self.grads.share(), stats: self.stats.clone(), generated: self.generated.share() }
    }
}

/// A generator step's inputs: the generator's noise, or the batch the last critic step
/// generated and kept; and the instance noise for the generated batch, drawn beforehand.
pub struct GeneratorInputs {
    pub input: Tensor,
    pub fake_noise: Option<Tensor>,
}

/// A generator step's outputs: its generator's gradients and its loss.
pub struct GeneratorOut {
    pub grads: GradStore,
    pub loss: Tensor,
}

impl Shared for GeneratorOut {
    fn share(&self) -> Self {
        Self { grads: self.grads.share(), loss: self.loss.clone() }
    }
}

/// The recordings of an iteration's steps (one per way the generator step gets its
/// batch: from the last critic step, or from fresh noise) and the inputs they read,
/// staged at fixed addresses.
pub struct StepGraphs {
    wanted: bool,
    critic: [Recording<CriticOut>; 2],
    generator: [Recording<GeneratorOut>; 2],
    /// The critic step's inputs' fixed tensors: the real batch, the noise, the generated
    /// batch's instance noise, the objective's draws.
    critic_slots: [Option<Tensor>; 4],
    /// The generator step's: the noise (a kept batch is not staged), the generated
    /// batch's instance noise.
    generator_slots: [Option<Tensor>; 2],
}

impl StepGraphs {
    pub fn new(wanted: bool, device: &Device) -> Self {
        let wanted = wanted && device.is_cuda();
        let critic = |name| Recording::new(name, wanted, device);
        let generator = |name| Recording::new(name, wanted, device);
        Self {
            wanted,
            critic: [critic("critic step"), critic("critic step, batch kept")],
            generator: [generator("generator step"), generator("generator step, kept batch")],
            critic_slots: Default::default(),
            generator_slots: Default::default(),
        }
    }

    /// Asked for wherever it runs: on the CPU every recording is tried and fails, so the
    /// steps run eagerly on staged inputs (tests of the staging).
    #[cfg(test)]
    pub(crate) fn forced() -> Self {
        let mut graphs = Self::new(false, &Device::Cpu);
        graphs.wanted = true;
        graphs.critic.iter_mut().for_each(|r| r.state = State::Cold);
        graphs.generator.iter_mut().for_each(|r| r.state = State::Cold);
        graphs
    }

    /// How many step graphs replay now; `None` where graphs were not asked for (or the
    /// device is not a GPU).
    pub fn replaying(&self) -> Option<usize> {
        let all =
            self.critic.iter().map(Recording::is_replaying).chain(self.generator.iter().map(Recording::is_replaying));
        self.wanted.then(|| all.filter(|&r| r).count())
    }

    /// The critic step's recording, and its inputs staged; `None` where it runs eagerly.
    pub fn critic(&mut self, keep: bool, inputs: &CriticInputs) -> Result<Option<Staged<'_, CriticOut, CriticInputs>>> {
        if !self.wanted {
            return Ok(None);
        }
        let [real, z, fake_noise, drawn] = &mut self.critic_slots;
        let (Some(real), Some(z)) = (stage(real, &inputs.real)?, stage(z, &inputs.z)?) else {
            return Ok(None);
        };
        let (Some(fake_noise), Some(drawn)) =
            (stage_optional(fake_noise, inputs.fake_noise.as_ref())?, stage_optional(drawn, inputs.drawn.as_ref())?)
        else {
            return Ok(None);
        };
        let inputs = CriticInputs { real, z, fake_noise, drawn };
        Ok(Some(Staged { recording: &mut self.critic[keep as usize], inputs }))
    }

    /// The generator step's recording for its inputs: the batch the critic step kept
    /// (`kept`; only where it is the replayed critic step's output, whose address the
    /// recording reads; an eager critic step's batch lies elsewhere), or fresh noise,
    /// staged; the instance noise staged. `None` where it runs eagerly.
    pub fn generator(
        &mut self,
        inputs: &GeneratorInputs,
        kept: bool,
    ) -> Result<Option<Staged<'_, GeneratorOut, GeneratorInputs>>> {
        if !self.wanted {
            return Ok(None);
        }
        let [z, fake_noise] = &mut self.generator_slots;
        let input = if kept {
            let replayed = self.critic[1].recorded().and_then(|out| out.generated.as_ref());
            if replayed.is_none_or(|g| g.id() != inputs.input.id()) {
                return Ok(None);
            }
            inputs.input.clone()
        } else {
            match stage(z, &inputs.input)? {
                Some(z) => z,
                None => return Ok(None),
            }
        };
        let Some(fake_noise) = stage_optional(fake_noise, inputs.fake_noise.as_ref())? else {
            return Ok(None);
        };
        Ok(Some(Staged {
            recording: &mut self.generator[kept as usize],
            inputs: GeneratorInputs { input, fake_noise },
        }))
    }
}

/// A recording and the inputs its closure reads.
pub struct Staged<'a, T, I> {
    pub recording: &'a mut Recording<T>,
    pub inputs: I,
}

/// `x` copied into `slot` (made on first use), whose address a recording reads; `None`
/// where `x` is shaped unlike the slot (a short last batch).
fn stage(slot: &mut Option<Tensor>, x: &Tensor) -> Result<Option<Tensor>> {
    let buffer = match slot {
        Some(b) => b,
        None => slot.insert(x.zeros_like()?),
    };
    if buffer.shape() != x.shape() || buffer.dtype() != x.dtype() {
        return Ok(None);
    }
    buffer.slice_set(&x.contiguous()?, 0, 0)?;
    Ok(Some(buffer.clone()))
}

/// [`stage`] for an input a step may not have: `Some(None)` where it has none.
fn stage_optional(slot: &mut Option<Tensor>, x: Option<&Tensor>) -> Result<Option<Option<Tensor>>> {
    match x {
        Some(x) => Ok(stage(slot, x)?.map(Some)),
        None => Ok(Some(None)),
    }
}

/// `grads` reduced to the variables `ids`, detached (a recording's outputs stay
/// allocated: the activations' gradients, and any graph a gradient holds, are dropped
/// while it records, their memory reused).
pub fn keep(grads: GradStore, ids: &[TensorId]) -> GradStore {
    let mut kept = GradStore::default();
    for id in ids {
        if let Some(g) = grads.get_id(*id) {
            kept.insert_id(*id, g.detach());
        }
    }
    kept
}

#[cfg(feature = "cuda")]
mod graph {
    use candle_core::cuda_backend::cudarc::driver::{sys, CudaGraph};
    use candle_core::Device;

    use crate::{Result, TrainError};

    pub struct Graph(CudaGraph);

    impl Graph {
        pub fn replay(&self) -> Result<()> {
            self.0.launch().map_err(|e| failed(format!("cuGraphLaunch: {e:?}")))
        }
    }

    fn failed(detail: String) -> TrainError {
        TrainError::Candle(candle_core::Error::Msg(detail))
    }

    /// `f` with Candle caching its small host-to-device copies by content (its layouts'
    /// shapes and strides, small constant tensors), which a recording may not make.
    pub fn with_upload_cache<T>(device: &Device, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _cache = device.as_cuda_device().ok().map(|cuda| cuda.enable_cuda_graph_htod_cache());
        f()
    }

    /// `f`'s launches recorded from the device's stream, not run, and `f`'s outputs,
    /// which [`Graph::replay`] writes. Allocations made while recording come from the
    /// graph's own memory at fixed addresses, freed and made again at each replay
    /// (`AUTO_FREE_ON_LAUNCH`), so the outputs' storage stays valid between replays.
    pub fn record<T>(device: &Device, f: impl FnOnce() -> Result<T>) -> Result<(Graph, T)> {
        let cuda = device.as_cuda_device()?;
        let stream = cuda.cuda_stream();
        let _cache = cuda.enable_cuda_graph_htod_cache();
        // Relaxed: nothing on other threads is refused while this thread records.
        let mode = sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED;
        stream.begin_capture(mode).map_err(|e| failed(format!("cuStreamBeginCapture: {e:?}")))?;
        let mut outputs = f();
        // A capture an illegal call invalidated: the outputs are freed while it lasts.
        let active = sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_ACTIVE;
        if outputs.is_ok() && stream.capture_status().ok() != Some(active) {
            outputs = Err(failed("the capture was invalidated".into()));
        }
        let flags = sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH;
        // The capture always ends, also after `f` failed, so the stream is usable again.
        let ended = stream.end_capture(flags);
        let result = match (outputs, ended) {
            (Ok(outputs), Ok(Some(graph))) => return Ok((Graph(graph), outputs)),
            (Err(e), _) => Err(e),
            (Ok(outputs), Ok(None)) => {
                drop(outputs);
                Err(failed("the recording captured nothing".into()))
            }
            (Ok(outputs), Err(e)) => {
                drop(outputs);
                Err(failed(format!("cuStreamEndCapture / cuGraphInstantiate: {e:?}")))
            }
        };
        // What was freed while the capture was invalid, or after it failed, left its
        // error with the context, which would fail the next eager call: cleared here.
        if let Err(e) = stream.context().check_err() {
            tracing::debug!("error left by the failed recording, cleared: {e:?}");
        }
        result
    }
}

#[cfg(not(feature = "cuda"))]
mod graph {
    use candle_core::Device;

    use crate::{Result, TrainError};

    /// Never made: a build without CUDA records nothing ([`super::Recording::new`] is
    /// `Off` off a GPU, and there is no GPU device without CUDA).
    pub enum Graph {}

    impl Graph {
        pub fn replay(&self) -> Result<()> {
            match *self {}
        }
    }

    pub fn with_upload_cache<T>(_: &Device, f: impl FnOnce() -> Result<T>) -> Result<T> {
        f()
    }

    pub fn record<T>(_: &Device, _: impl FnOnce() -> Result<T>) -> Result<(Graph, T)> {
        Err(TrainError::Candle(candle_core::Error::Msg("this build has no CUDA".into())))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::{asks, Recording, Shared};

    /// Off a GPU every call runs the closure, whatever was asked.
    #[test]
    fn off_a_gpu_every_call_runs_eagerly() {
        let mut rec = Recording::<Tensor>::new("test", true, &Device::Cpu);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut calls = 0;
        for i in 0..3 {
            let drawn = i as f32 + rng.random::<f32>();
            let out = rec
                .run(&Device::Cpu, &rng, || {
                    calls += 1;
                    Ok(Tensor::new(&[drawn], &Device::Cpu)?)
                })
                .unwrap();
            assert_eq!(out.to_vec1::<f32>().unwrap(), [drawn]);
        }
        assert_eq!(calls, 3);
        assert!(!rec.is_replaying());
    }

    /// Where recording fails (here: no GPU) the closure runs eagerly: the warm-up, the
    /// failed recording, and every call after it, each getting the closure's own outputs.
    #[test]
    fn where_recording_cannot_work_every_call_still_runs_the_step() {
        let mut rec = Recording::<Tensor>::cold("test");
        let rng = ChaCha8Rng::seed_from_u64(1);
        let mut calls = 0;
        for i in 0..4 {
            let out = rec
                .run(&Device::Cpu, &rng, || {
                    calls += 1;
                    Ok(Tensor::new(&[i as f32], &Device::Cpu)?)
                })
                .unwrap();
            assert_eq!(out.to_vec1::<f32>().unwrap(), [i as f32], "call {i}");
            assert!(!rec.is_replaying());
            let state = match rec.state {
                super::State::Cold => "cold",
                super::State::Warm => "warm",
                super::State::Recorded { .. } => "recorded",
                super::State::Off => "off",
            };
            assert_eq!(state, if i == 0 { "warm" } else { "off" }, "call {i}");
        }
        assert_eq!(calls, 4);
    }

    #[test]
    fn a_shared_gradient_store_holds_the_same_tensors() {
        let x = candle_core::Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let grads = (x.as_tensor() * 3.0).unwrap().sum_all().unwrap().backward().unwrap();
        let copy = grads.share();
        let (a, b) = (grads.get(x.as_tensor()).unwrap(), copy.get(x.as_tensor()).unwrap());
        assert_eq!(a.id(), b.id());
        assert_eq!(copy.get_ids().count(), grads.get_ids().count());
    }

    #[test]
    fn only_an_explicit_yes_asks_for_graphs() {
        for (value, wanted) in
            [(Some("1"), true), (Some(" on"), true), (Some("0"), false), (Some("yes please"), false), (None, false)]
        {
            assert_eq!(asks(value), wanted, "{value:?}");
        }
    }
}
