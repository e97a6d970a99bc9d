//! How ganzoo's convolutions run on CUDA: by default each geometry by a rule of size and
//! precision ([`CudaConv::Auto`], `through_cudnn`), either through cuDNN (feature
//! `cudnn`) or as ganzoo's im2col / col2im kernels around cuBLAS products
//! (`conv_columns.rs`); or all through cuDNN, all as the columns, or, opted into,
//! whichever is fastest on each geometry by timing ([`CudaConv::Timed`]), chosen by
//! `GANZOO_CUDA_CONV`; in exact f32, or with TF32 tensor cores as PyTorch's cuDNN
//! convolutions run by default ([`set_conv_tf32`]); bf16 ones (mixed precision) through
//! cuDNN's graph API (`bf16_through_graph`). The rules that send a geometry to
//! cuDNN (`through_cudnn`), take cuDNN's algorithms ([`qualifying`]) and a timed
//! candidate ([`fastest`]) live here, off the GPU, so the CPU's tests hold them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

#[cfg(any(feature = "cuda", test))]
use crate::geometry::ConvGeometry;

/// The implementation of the three convolution primitives on CUDA f32 NCHW images (and
/// what it means for bf16 ones: `bf16_through_graph`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CudaConv {
    /// The default with cuDNN built: per geometry, cuDNN as [`CudaConv::Cudnn`] or the
    /// columns as [`CudaConv::Columns`], by `through_cudnn`'s rule (the columns in
    /// exact f32 and for small products, cuDNN for large ones with TF32).
    Auto,
    /// `cudnnConvolutionForward`, `…BackwardData`, `…BackwardFilter`, the heuristics'
    /// first algorithm [`qualifying`] allows (deterministic ones only); the dense
    /// convolutions the columns' one product.
    Cudnn,
    /// As [`CudaConv::Cudnn`], but the heuristics' first offer deterministic or not, as
    /// PyTorch's default takes it (`cudnn.deterministic` off): two runs from one seed
    /// then agree only within rounding.
    CudnnAny,
    /// The three primitives through cuDNN's graph API (its backend descriptors, as
    /// PyTorch's cuDNN convolutions since its v8 API): the first engine configuration of
    /// cuDNN's instant heuristics that [`engine_qualifies`] allows (deterministic ones
    /// only) and that builds into a plan within [`cudnn_workspace_bytes`]; the dense
    /// convolutions the columns' one product. Not yet run on a GPU.
    CudnnGraph,
    /// As [`CudaConv::CudnnGraph`], non-deterministic engines allowed: PyTorch's default
    /// choice (`cudnn.benchmark` and `cudnn.deterministic` off), but for the workspace
    /// bound and the dense layers.
    CudnnGraphAny,
    /// ganzoo's im2col / col2im kernels around Candle's cuBLAS products, one a chunk of
    /// samples.
    Columns,
    /// Per primitive and geometry, the fastest of the columns (one product a chunk, or
    /// one a sample in a batched product), every cuDNN algorithm [`qualifying`] allows
    /// and every engine configuration of its graph API's heuristics [`engine_qualifies`]
    /// allows (at most [`GRAPH_PLANS`]) — non-deterministic ones too, as PyTorch's default takes
    /// them —, each timed once ([`TIMED_REPEATS`]) where the geometry first runs (as
    /// PyTorch's `cudnn.benchmark`), but those whose output is off the reference's
    /// ([`TIMED_AGREEMENT`]). The candidates round differently, some differently
    /// from one call to the next, and timing may choose differently from one process to
    /// the next: two runs from one seed then agree only within rounding. Opt-in.
    Timed,
}

impl CudaConv {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "cuDNN or its im2col / col2im kernels + cuBLAS by size and precision",
            Self::Cudnn => "cuDNN",
            Self::CudnnAny => "cuDNN, non-deterministic algorithms allowed",
            Self::CudnnGraph => "cuDNN's graph API",
            Self::CudnnGraphAny => "cuDNN's graph API, non-deterministic engines allowed",
            Self::Columns => "its im2col / col2im kernels + cuBLAS",
            Self::Timed => "the faster of cuDNN and its im2col / col2im kernels, timed per layer",
        }
    }
}

/// The implementation in use, from `GANZOO_CUDA_CONV` (read once): `auto`, `cudnn`,
/// `cudnn-any`, `cudnn-graph`, `cudnn-graph-any`, `columns` or `timed`; unset or anything else (`ganzoo`; `gemm` is the
/// models' switch to Candle's `conv2d`) the default, [`CudaConv::Auto`] in a build with
/// the `cudnn` feature, else the columns.
pub fn cuda_conv() -> CudaConv {
    static CHOSEN: OnceLock<CudaConv> = OnceLock::new();
    *CHOSEN.get_or_init(|| chosen(std::env::var("GANZOO_CUDA_CONV").ok().as_deref(), cfg!(feature = "cudnn")))
}

/// What `GANZOO_CUDA_CONV=value` chooses in this build (a bench names its workers' choice).
pub fn cuda_conv_for(value: &str) -> CudaConv {
    chosen(Some(value), cfg!(feature = "cudnn"))
}

fn chosen(value: Option<&str>, cudnn_built: bool) -> CudaConv {
    match value {
        Some("columns") => CudaConv::Columns,
        Some(v @ ("auto" | "cudnn" | "cudnn-any" | "cudnn-graph" | "cudnn-graph-any" | "timed")) if !cudnn_built => {
            tracing::warn!("GANZOO_CUDA_CONV={v}: this build has no cuDNN (feature `cudnn`); using the columns");
            CudaConv::Columns
        }
        Some("cudnn") => CudaConv::Cudnn,
        Some("cudnn-any") => CudaConv::CudnnAny,
        Some("cudnn-graph") => CudaConv::CudnnGraph,
        Some("cudnn-graph-any") => CudaConv::CudnnGraphAny,
        Some("timed") => CudaConv::Timed,
        _ if cudnn_built => CudaConv::Auto,
        _ => CudaConv::Columns,
    }
}

static CONV_TF32: AtomicBool = AtomicBool::new(false);

/// Lets the CUDA convolutions use TF32 tensor cores (10-bit mantissas in the products,
/// f32 sums), as PyTorch's cuDNN convolutions do by default (`cudnn.allow_tf32`), while
/// other matrix products stay exact; off, they are exact f32. No effect on the CPU.
pub fn set_conv_tf32(on: bool) {
    CONV_TF32.store(on, Ordering::Relaxed);
}

/// Whether the CUDA convolutions may use TF32: [`set_conv_tf32`], or Candle's switch for
/// every f32 product (`candle_core::cuda::set_gemm_reduced_precision_f32`).
pub fn conv_tf32() -> bool {
    CONV_TF32.load(Ordering::Relaxed) || candle_core::cuda::gemm_reduced_precision_f32()
}

/// Whether `conv` sends a convolution on `g` to cuDNN (else the columns run it), with
/// TF32 allowed in the convolutions or not. Never the dense ones (the kernel covering the
/// whole unpadded image: DCGAN's first generator and last critic layers): they are one
/// matrix product each way, cuBLAS's GEMM in the columns with no unfolding, where
/// cuDNN's heuristic choice ran 3 to 10 times slower on the H200. [`CudaConv::Cudnn`],
/// [`CudaConv::CudnnAny`], the graph API's two (and [`CudaConv::Timed`]'s reference):
/// every other one.
/// [`CudaConv::Auto`]: those of at least [`cudnn_from_macs`] multiply-adds, the
/// crossover the H200's measurements put between DCGAN's layer sizes
/// (docs/performance.md, *CUDA: which convolutions go to cuDNN*).
#[cfg(any(feature = "cuda", test))]
pub(crate) fn through_cudnn(conv: CudaConv, g: &ConvGeometry, tf32: bool) -> bool {
    match conv {
        _ if g.dense() => false,
        CudaConv::Auto => g.macs() >= cudnn_from_macs(tf32),
        CudaConv::Columns => false,
        CudaConv::Cudnn | CudaConv::CudnnAny | CudaConv::CudnnGraph | CudaConv::CudnnGraphAny | CudaConv::Timed => true,
    }
}

/// How `conv` runs a bf16 convolution on `g` (mixed precision; the operands and output
/// bf16, the sums f32): `Some(any_order)`, through cuDNN's graph API, its first plan —
/// non-deterministic engines allowed under [`CudaConv::CudnnAny`],
/// [`CudaConv::CudnnGraphAny`] and [`CudaConv::Timed`] (which does not time bf16
/// convolutions) —; `None`, the operands widened to f32 and the convolution run as an f32
/// one on `g` runs, the result rounded to bf16: the dense ones (one cuBLAS product, as in
/// f32) and every one under [`CudaConv::Columns`] (also what a build without cuDNN has).
/// The graph API with no plan for `g` falls back the same way.
#[cfg(any(feature = "cuda", test))]
pub(crate) fn bf16_through_graph(conv: CudaConv, g: &ConvGeometry) -> Option<bool> {
    match conv {
        _ if g.dense() => None,
        CudaConv::Columns => None,
        CudaConv::CudnnAny | CudaConv::CudnnGraphAny | CudaConv::Timed => Some(true),
        CudaConv::Auto | CudaConv::Cudnn | CudaConv::CudnnGraph => Some(false),
    }
}

/// The smallest convolution (multiply-adds of one primitive, [`ConvGeometry::macs`])
/// [`CudaConv::Auto`] sends to cuDNN: 2³⁰ with TF32, between DCGAN-32's layers at batch
/// 64 (0.54 G; the columns ahead) and DCGAN-64's at 64 or DCGAN-32's at 256 (2.1 G;
/// cuDNN ahead); 2³² in exact f32, between those (the columns ahead) and DCGAN-64's at
/// 256 (8.6 G; cuDNN ahead).
#[cfg(any(feature = "cuda", test))]
pub(crate) fn cudnn_from_macs(tf32: bool) -> usize {
    if tf32 {
        1 << 30
    } else {
        1 << 32
    }
}

/// Workspace one cuDNN call may take by default ([`cudnn_workspace_bytes`]), as
/// `conv_columns`' bound on its columns.
pub const WORKSPACE_BYTES: usize = 64 << 20;

/// The largest `GANZOO_CUDNN_WORKSPACE_MIB` taken: 1 TiB, above any GPU's memory.
pub const MAX_WORKSPACE_MIB: usize = 1 << 20;

/// The workspace one cuDNN call may take ([`qualifying`]; the graph API passes over a
/// plan that asks for more): `GANZOO_CUDNN_WORKSPACE_MIB` (read once; a whole number of
/// MiB up to [`MAX_WORKSPACE_MIB`], 0 for algorithms without workspace), else
/// [`WORKSPACE_BYTES`]. PyTorch bounds it by free memory only (`Conv_v8.cpp`: a plan
/// whose workspace cannot be allocated is passed over); the fixed choices here pass over
/// an algorithm or plan whose workspace fails to allocate the same way.
pub fn cudnn_workspace_bytes() -> usize {
    static CHOSEN: OnceLock<usize> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let value = std::env::var("GANZOO_CUDNN_WORKSPACE_MIB").ok();
        workspace_bound(value.as_deref()).unwrap_or_else(|e| {
            tracing::warn!("GANZOO_CUDNN_WORKSPACE_MIB: {e}; using the default, {} MiB", WORKSPACE_BYTES >> 20);
            WORKSPACE_BYTES
        })
    })
}

/// The bound in bytes `GANZOO_CUDNN_WORKSPACE_MIB=value` sets ([`cudnn_workspace_bytes`]).
fn workspace_bound(value: Option<&str>) -> Result<usize, String> {
    let Some(value) = value else { return Ok(WORKSPACE_BYTES) };
    match value.trim().parse::<usize>() {
        Ok(mib) if mib <= MAX_WORKSPACE_MIB => Ok(mib << 20),
        Ok(mib) => Err(format!("{mib} MiB is above the largest taken, {MAX_WORKSPACE_MIB} MiB")),
        Err(_) => Err(format!("`{value}` is not a whole number of MiB")),
    }
}

/// One algorithm cuDNN's heuristics offer (`cudnnGetConvolution…Algorithm_v7`), in
/// their order, fastest first as cuDNN predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// `status == CUDNN_STATUS_SUCCESS`: it runs on this geometry.
    pub runs: bool,
    pub deterministic: bool,
    /// Its math type is anything but `CUDNN_FMA_MATH` (tensor cores: TF32 on f32).
    pub tensor_cores: bool,
    pub workspace: usize,
}

/// The offers that may be taken, in the heuristics' order: those that run, need at most
/// `workspace` bytes ([`cudnn_workspace_bytes`]), compute in exact f32 unless `tf32`, and
/// are deterministic (one seed gives one run, as on the CPU) unless `any_order`
/// ([`CudaConv::CudnnAny`], [`CudaConv::Timed`]). [`CudaConv::Cudnn`] takes the first;
/// none: the caller falls back to the columns.
pub fn qualifying(offers: &[Offer], (tf32, any_order): (bool, bool), workspace: usize) -> Vec<usize> {
    let takes =
        |o: &Offer| o.runs && (o.deterministic || any_order) && o.workspace <= workspace && (tf32 || !o.tensor_cores);
    (0..offers.len()).filter(|&i| takes(&offers[i])).collect()
}

/// What cuDNN's graph API notes of an engine ([`CudaConv::CudnnGraph`]): its numerical
/// notes `CUDNN_NUMERICAL_NOTE_TENSOR_CORE` (TF32 on f32 data),
/// `…_DOWN_CONVERT_INPUTS` (f32 inputs rounded to a 16-bit type) and `…_NONDETERMINISTIC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineNotes {
    pub tensor_core: bool,
    pub down_convert: bool,
    pub non_deterministic: bool,
}

/// Whether an engine with `notes` may run a convolution: never one that rounds its
/// inputs to a narrower type, tensor cores only with `tf32` (pass `true` for bf16 data:
/// PyTorch restricts them only on f32), a non-deterministic one only with `any_order` —
/// the filter PyTorch's v8 API applies (`filterEngineConfigs` in
/// `aten/src/ATen/native/cudnn/Conv_v8.cpp`), `any_order` its `cudnn.deterministic` off.
pub fn engine_qualifies(notes: EngineNotes, tf32: bool, any_order: bool) -> bool {
    !notes.down_convert && (tf32 || !notes.tensor_core) && (any_order || !notes.non_deterministic)
}

/// Which built plan of cuDNN's graph API (`cuda/cudnn_graph.rs`) runs as its `nth`,
/// given which failed on their first run: the `nth` (timing's candidates, which leave
/// out one that fails), but for the fixed
/// choices (`nth` 0) the first that has not failed — PyTorch runs its plans in order
/// until one runs (`try_plans` in `Conv_v8.cpp`). Timing's first candidate is then the
/// next plan under the first one's name; the warning says so.
#[cfg(any(feature = "cudnn", test))]
pub(crate) fn plan_index(mut failed: impl ExactSizeIterator<Item = bool>, nth: usize) -> Option<usize> {
    match nth {
        0 => failed.position(|f| !f),
        n => (n < failed.len()).then_some(n),
    }
}

/// At most this many of the graph API's engine configurations become plans for one
/// primitive and geometry ([`CudaConv::Timed`] times each; the others take the first).
pub const GRAPH_PLANS: usize = 8;

/// Runs of each candidate [`CudaConv::Timed`] times, after one untimed (which loads,
/// plans and allocates, and whose output is checked: [`TIMED_AGREEMENT`]); the best counts.
pub const TIMED_REPEATS: usize = 3;

/// How far a candidate's output may lie from the reference's ([`CudaConv::Cudnn`]'s
/// choice, which passed parity on the H200) for [`CudaConv::Timed`] to take it, in [`disagreement`]. Correct candidates
/// differ by rounding (TF32 ones by about 1e-3); a wrong one (a layout or an
/// algorithm's defect) by the order of the values themselves.
pub const TIMED_AGREEMENT: f64 = 2e-2;

/// `max |got − want| / max |want|`; infinite where the lengths differ, a value is NaN or
/// `want` is all zeros and `got` is not.
pub fn disagreement(got: &[f32], want: &[f32]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let (mut diff, mut scale) = (0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        let d = (g as f64 - w as f64).abs();
        if d.is_nan() {
            return f64::INFINITY;
        }
        (diff, scale) = (diff.max(d), scale.max((w as f64).abs()));
    }
    if diff == 0.0 {
        0.0
    } else if scale == 0.0 {
        f64::INFINITY
    } else {
        diff / scale
    }
}

/// The candidate [`CudaConv::Timed`] takes from their best times (`None`: left out,
/// its output off the reference's): the fastest, the earlier among equals (the columns
/// come first). `None` where no candidate is left.
pub fn fastest(times: &[Option<Duration>]) -> Option<usize> {
    (0..times.len()).filter(|&i| times[i].is_some()).min_by_key(|&i| times[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(runs: bool, deterministic: bool, tensor_cores: bool, workspace: usize) -> Offer {
        Offer { runs, deterministic, tensor_cores, workspace }
    }

    #[test]
    fn offers_that_run_deterministically_within_the_workspace_qualify_in_order() {
        let offers = [
            offer(false, true, false, 0),
            offer(true, false, false, 0),
            offer(true, true, false, WORKSPACE_BYTES + 1),
            offer(true, true, false, WORKSPACE_BYTES),
            offer(true, true, false, 0),
        ];
        assert_eq!(qualifying(&offers, (false, false), WORKSPACE_BYTES), [3, 4]);
        assert!(qualifying(&offers[..3], (false, false), WORKSPACE_BYTES).is_empty());
        assert_eq!(qualifying(&offers, (false, true), WORKSPACE_BYTES), [1, 3, 4]);
        assert_eq!(qualifying(&offers, (false, false), WORKSPACE_BYTES + 1), [2, 3, 4]);
        assert_eq!(qualifying(&offers, (false, false), 0), [4]);
    }

    #[test]
    fn the_workspace_bound_takes_whole_mib_up_to_a_tebibyte() {
        assert_eq!(workspace_bound(None), Ok(WORKSPACE_BYTES));
        assert_eq!(workspace_bound(Some("0")), Ok(0));
        assert_eq!(workspace_bound(Some(" 4096\n")), Ok(4096 << 20));
        assert_eq!(workspace_bound(Some("1048576")), Ok(1 << 40));
        for bad in ["1048577", "-1", "1.5", "64MiB", "", "18446744073709551616"] {
            assert!(workspace_bound(Some(bad)).is_err(), "{bad:?} taken");
        }
    }

    #[test]
    fn tensor_core_offers_qualify_only_with_tf32() {
        let offers = [offer(true, true, true, 0), offer(true, true, false, 0)];
        assert_eq!(qualifying(&offers, (false, false), 0), [1]);
        assert_eq!(qualifying(&offers, (true, false), 0), [0, 1]);
        assert!(qualifying(&offers[..1], (false, true), 0).is_empty());
    }

    /// PyTorch's filter: rounding inputs to 16 bits never, TF32 only where allowed,
    /// non-deterministic engines only where asked for.
    #[test]
    fn engines_qualify_by_their_numerical_notes() {
        let plain = EngineNotes::default();
        let tc = EngineNotes { tensor_core: true, ..plain };
        let down = EngineNotes { down_convert: true, ..plain };
        let nd = EngineNotes { non_deterministic: true, ..plain };
        let tc_nd = EngineNotes { tensor_core: true, non_deterministic: true, ..plain };
        for (tf32, any) in [(false, false), (false, true), (true, false), (true, true)] {
            assert!(engine_qualifies(plain, tf32, any));
            assert!(!engine_qualifies(down, tf32, any));
            assert_eq!(engine_qualifies(tc, tf32, any), tf32);
            assert_eq!(engine_qualifies(nd, tf32, any), any);
            assert_eq!(engine_qualifies(tc_nd, tf32, any), tf32 && any);
        }
    }

    /// The fixed choice moves past plans that failed on their first run; timing's `nth`
    /// is that plan or none.
    #[test]
    fn a_plan_that_failed_is_passed_over_by_the_fixed_choice_only() {
        assert_eq!(plan_index([false, false].into_iter(), 0), Some(0));
        assert_eq!(plan_index([true, false, false].into_iter(), 0), Some(1));
        assert_eq!(plan_index([true, true].into_iter(), 0), None);
        assert_eq!(plan_index([].into_iter(), 0), None);
        assert_eq!(plan_index([true, true, false].into_iter(), 1), Some(1));
        assert_eq!(plan_index([false, false].into_iter(), 2), None);
    }

    #[test]
    fn timing_takes_the_fastest_and_the_earlier_of_equals_among_those_left() {
        let ms = |v: &[u64]| v.iter().map(|&m| (m > 0).then(|| Duration::from_micros(m))).collect::<Vec<_>>();
        assert_eq!(fastest(&ms(&[90, 320, 85, 400])), Some(2));
        assert_eq!(fastest(&ms(&[90, 90, 120])), Some(0));
        assert_eq!(fastest(&ms(&[500, 90, 90])), Some(1));
        // 0: left out, however fast it ran.
        assert_eq!(fastest(&ms(&[90, 0, 85, 0])), Some(2));
        assert_eq!(fastest(&ms(&[0, 0])), None);
        assert_eq!(fastest(&[]), None);
    }

    /// Rounding passes, a wrong output (a transposed layout, NaN, another length) does not.
    #[test]
    fn a_candidate_off_the_references_output_is_told_apart_from_rounding() {
        let want: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32 - 32.0) / 8.0).collect();
        assert_eq!(disagreement(&want, &want), 0.0);
        let tf32: Vec<f32> = want.iter().map(|v| v * (1.0 + 1e-3)).collect();
        assert!(disagreement(&tf32, &want) < TIMED_AGREEMENT);
        let transposed: Vec<f32> = (0..64).map(|i| want[i % 8 * 8 + i / 8]).collect();
        assert!(disagreement(&transposed, &want) > TIMED_AGREEMENT);
        let mut nan = want.clone();
        nan[5] = f32::NAN;
        assert_eq!(disagreement(&nan, &want), f64::INFINITY);
        assert_eq!(disagreement(&want[1..], &want), f64::INFINITY);
        assert_eq!(disagreement(&[0.0, 1e-9], &[0.0, 0.0]), f64::INFINITY);
    }

    #[test]
    fn the_environment_chooses_among_what_was_built() {
        assert_eq!(chosen(None, true), CudaConv::Auto);
        assert_eq!(chosen(None, false), CudaConv::Columns);
        assert_eq!(chosen(Some("auto"), true), CudaConv::Auto);
        assert_eq!(chosen(Some("columns"), true), CudaConv::Columns);
        assert_eq!(chosen(Some("cudnn"), true), CudaConv::Cudnn);
        assert_eq!(chosen(Some("cudnn-any"), true), CudaConv::CudnnAny);
        assert_eq!(chosen(Some("cudnn-graph"), true), CudaConv::CudnnGraph);
        assert_eq!(chosen(Some("cudnn-graph-any"), true), CudaConv::CudnnGraphAny);
        assert_eq!(chosen(Some("gemm"), true), CudaConv::Auto);
        assert_eq!(chosen(Some("timed"), true), CudaConv::Timed);
        for v in ["auto", "cudnn", "cudnn-any", "cudnn-graph", "cudnn-graph-any", "timed", "columns"] {
            assert_eq!(chosen(Some(v), false), CudaConv::Columns, "{v}");
        }
    }

    fn geometry(x: [usize; 4], w: [usize; 4], stride: usize, padding: usize) -> ConvGeometry {
        use crate::geometry::ConvParams;
        ConvGeometry::new(x, w, ConvParams::new(stride, padding)).unwrap()
    }

    /// DCGAN's layers (as the primitives' forward geometry: a transposed convolution is
    /// its forward's adjoint): only G1 (100 → 512 channels, 1² → 4²) and the critic's last
    /// (512 → 1, 4² → 1²) are dense, and none of those goes to cuDNN.
    #[test]
    fn only_dense_convolutions_skip_cudnn() {
        let cudnn =
            [CudaConv::Cudnn, CudaConv::CudnnAny, CudaConv::CudnnGraph, CudaConv::CudnnGraphAny, CudaConv::Timed];
        let every = [&cudnn[..], &[CudaConv::Auto, CudaConv::Columns]].concat();
        for conv in every {
            for tf32 in [false, true] {
                assert!(!through_cudnn(conv, &geometry([256, 512, 4, 4], [100, 512, 4, 4], 1, 0), tf32));
                assert!(!through_cudnn(conv, &geometry([256, 512, 4, 4], [1, 512, 4, 4], 1, 0), tf32));
            }
        }
        for conv in cudnn {
            assert!(through_cudnn(conv, &geometry([64, 3, 64, 64], [64, 3, 4, 4], 2, 1), false));
            assert!(through_cudnn(conv, &geometry([64, 256, 8, 8], [512, 256, 4, 4], 2, 1), true));
            // One output pixel, but a patch short of the image, or padded: not one product.
            assert!(through_cudnn(conv, &geometry([64, 8, 5, 5], [4, 8, 4, 4], 2, 0), false));
            assert!(through_cudnn(conv, &geometry([64, 8, 2, 2], [4, 8, 4, 4], 1, 1), false));
        }
        assert!(!through_cudnn(CudaConv::Columns, &geometry([256, 256, 8, 8], [512, 256, 4, 4], 2, 1), true));
    }

    /// The default by DCGAN's sizes: a middle layer (128 → 256 channels, 16² → 8²,
    /// 0.54 G multiply-adds at batch 64 on DCGAN-32's shapes, 2.1 G on DCGAN-64's or at
    /// 256, 8.6 G on DCGAN-64's at 256) goes to cuDNN from 2.1 G with TF32, only at 8.6 G
    /// in exact f32; the 3-channel first layer (0.05–0.8 G) never.
    #[test]
    fn the_default_sends_large_convolutions_to_cudnn_and_sooner_with_tf32() {
        let middle = |n, side| geometry([n, 128, side, side], [256, 128, 4, 4], 2, 1);
        let on = |g: &ConvGeometry, tf32| through_cudnn(CudaConv::Auto, g, tf32);
        assert_eq!(middle(64, 8).macs(), 64 * 256 * 16 * 128 * 16);
        assert!(!on(&middle(64, 8), true) && !on(&middle(64, 8), false));
        assert!(on(&middle(64, 16), true) && !on(&middle(64, 16), false));
        assert!(on(&middle(256, 8), true) && !on(&middle(256, 8), false));
        assert!(on(&middle(256, 16), true) && on(&middle(256, 16), false));
        let first = geometry([256, 3, 64, 64], [64, 3, 4, 4], 2, 1);
        assert!(!on(&first, true) && !on(&first, false));
        // The bounds themselves.
        let at = |n| geometry([n, 1, 4, 4], [1 << 18, 1, 2, 2], 2, 0);
        assert_eq!(at(256).macs(), cudnn_from_macs(true));
        assert!(on(&at(256), true) && !on(&at(255), true));
        assert_eq!(at(1024).macs(), cudnn_from_macs(false));
        assert!(on(&at(1024), false) && !on(&at(1023), false));
    }

    /// bf16: the graph API's first plan on every non-dense convolution, deterministic
    /// unless the setting allows otherwise; f32 through casts on the dense ones and
    /// under `columns`.
    #[test]
    fn bf16_convolutions_go_through_the_graph_api_but_the_dense_ones() {
        let middle = geometry([64, 128, 16, 16], [256, 128, 4, 4], 2, 1);
        let small = geometry([2, 3, 8, 8], [4, 3, 4, 4], 2, 1);
        let dense = geometry([256, 512, 4, 4], [1, 512, 4, 4], 1, 0);
        for g in [&middle, &small] {
            for conv in [CudaConv::Auto, CudaConv::Cudnn, CudaConv::CudnnGraph] {
                assert_eq!(bf16_through_graph(conv, g), Some(false), "{conv:?}");
            }
            for conv in [CudaConv::CudnnAny, CudaConv::CudnnGraphAny, CudaConv::Timed] {
                assert_eq!(bf16_through_graph(conv, g), Some(true), "{conv:?}");
            }
            assert_eq!(bf16_through_graph(CudaConv::Columns, g), None);
        }
        for conv in [CudaConv::Auto, CudaConv::CudnnGraphAny, CudaConv::Timed, CudaConv::Columns] {
            assert_eq!(bf16_through_graph(conv, &dense), None, "{conv:?}");
        }
    }

    #[test]
    fn tf32_in_the_convolutions_is_a_switch_of_its_own() {
        set_conv_tf32(true);
        assert!(conv_tf32());
        set_conv_tf32(false);
        assert_eq!(conv_tf32(), candle_core::cuda::gemm_reduced_precision_f32());
    }
}
