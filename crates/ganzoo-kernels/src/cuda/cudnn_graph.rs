//! The three convolution primitives through cuDNN's graph API (its backend descriptors,
//! the API PyTorch's cuDNN convolutions use since its v8 API; feature `cudnn`), NCHW in
//! f32 or bf16 (mixed precision; sums in f32 either way): one operation graph per
//! geometry and primitive — `CONVOLUTION_FORWARD` (`x`, `w` → `y`), `…BACKWARD_DATA`
//! (`dy`, `w` → `dx`), `…BACKWARD_FILTER` (`x`, `dy` → `dw`) of the same forward
//! convolution —, the engine configurations cuDNN's instant heuristics
//! (`CUDNN_HEUR_MODE_INSTANT`, PyTorch's default mode) return for it, in their order,
//! those [`engine_qualifies`] allows built into execution plans within
//! [`cudnn_workspace_bytes`], at most [`GRAPH_PLANS`] and only as many as asked for so far
//! (building one may compile a kernel). [`run`] takes the `n`th plan. Graphs and plans are
//! kept per thread, per device, geometry, TF32, primitive, determinism, element type and
//! the data's alignment (declared to cuDNN, as PyTorch keys its plans). `None` from
//! [`run`]: no such plan (or no graph: cuDNN refused to describe or plan it, warned), and
//! the caller runs the convolution another way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::cuda_backend::cudarc::cudnn::sys::{
    self, cudnnBackendAttributeName_t as Attr, cudnnBackendAttributeType_t as Type,
    cudnnBackendDescriptorType_t as Kind,
};
use candle_core::cuda_backend::cudarc::driver::{CudaStream, DevicePtr, DevicePtrMut, SyncOnDrop};
use candle_core::cuda_backend::{CudaDevice, CudaStorage, CudaStorageSlice, DeviceId};
use candle_core::{DType, Layout, Result};

use super::conv::{shape, Operand, Primitive, Shape};
use super::int;
use crate::cuda_conv::{conv_tf32, cudnn_workspace_bytes, engine_qualifies, plan_index, EngineNotes, GRAPH_PLANS};
use crate::geometry::ConvGeometry;

/// The ops' name in errors.
const OP: &str = "ganzoo-convolution (cuDNN graph API)";

fn check(status: sys::cudnnStatus_t, what: &str) -> Result<()> {
    status.result().map_err(|e| candle_core::Error::Msg(format!("cuDNN graph API, {what}: {e:?}")))
}

/// A backend descriptor, destroyed when dropped.
struct Desc(sys::cudnnBackendDescriptor_t);

impl Drop for Desc {
    fn drop(&mut self) {
        // SAFETY: created by `cudnnBackendCreateDescriptor`, destroyed once.
        let _ = unsafe { sys::cudnnBackendDestroyDescriptor(self.0) };
    }
}

impl Desc {
    fn new(kind: Kind) -> Result<Self> {
        let mut d = std::ptr::null_mut();
        // SAFETY: cuDNN writes the new descriptor's handle.
        check(unsafe { sys::cudnnBackendCreateDescriptor(kind, &mut d) }, "creating a descriptor")?;
        Ok(Desc(d))
    }

    /// Sets `name` to `values`.
    ///
    /// # Safety
    /// `V` is the C type cuDNN reads for `ty`.
    unsafe fn set<V>(&self, name: Attr, ty: Type, values: &[V]) -> Result<()> {
        let (n, p) = (values.len() as i64, values.as_ptr() as *const c_void);
        // SAFETY: `p` points at `n` values of the type cuDNN reads (the caller's promise).
        check(unsafe { sys::cudnnBackendSetAttribute(self.0, name, ty, n, p) }, "setting an attribute")
    }

    fn int64s(&self, name: Attr, values: &[i64]) -> Result<()> {
        // SAFETY: `CUDNN_TYPE_INT64` is read as `int64_t`.
        unsafe { self.set(name, Type::CUDNN_TYPE_INT64, values) }
    }

    fn descriptors(&self, name: Attr, values: &[&Desc]) -> Result<()> {
        let raw: Vec<sys::cudnnBackendDescriptor_t> = values.iter().map(|d| d.0).collect();
        // SAFETY: `CUDNN_TYPE_BACKEND_DESCRIPTOR` is read as descriptor handles.
        unsafe { self.set(name, Type::CUDNN_TYPE_BACKEND_DESCRIPTOR, &raw) }
    }

    /// Up to `out.len()` values of `name` into `out`; how many there were.
    ///
    /// # Safety
    /// `V` is the C type cuDNN writes for `ty`.
    unsafe fn get<V>(&self, name: Attr, ty: Type, out: &mut [V]) -> Result<usize> {
        let mut n = 0i64;
        let p = if out.is_empty() { std::ptr::null_mut() } else { out.as_mut_ptr() as *mut c_void };
        // SAFETY: room for `out.len()` values of the type cuDNN writes (the caller's promise).
        let status = unsafe { sys::cudnnBackendGetAttribute(self.0, name, ty, out.len() as i64, &mut n, p) };
        check(status, "reading an attribute")?;
        Ok(n.max(0) as usize)
    }

    /// The descriptor `name` holds, as a new descriptor of `kind` that cuDNN fills.
    fn get_descriptor(&self, name: Attr, kind: Kind) -> Result<Desc> {
        let d = Desc::new(kind)?;
        // SAFETY: one pre-made descriptor of the attribute's kind, as cuDNN fills them.
        unsafe { self.get(name, Type::CUDNN_TYPE_BACKEND_DESCRIPTOR, &mut [d.0])? };
        Ok(d)
    }

    fn finalize(&self, what: &str) -> Result<()> {
        // SAFETY: a live descriptor.
        check(unsafe { sys::cudnnBackendFinalize(self.0) }, what)
    }
}

/// The variant pack's names of `x`, `w` and `y` (for the adjoint `dx` and `dy`, for the
/// weight gradient `dw`).
const UIDS: [i64; 3] = [1, 2, 3];

/// cuDNN's name for the element type of a primitive's operands and output: f32, or bf16
/// (mixed precision).
fn data_type(dtype: DType) -> Result<sys::cudnnDataType_t> {
    match dtype {
        DType::F32 => Ok(sys::cudnnDataType_t::CUDNN_DATA_FLOAT),
        DType::BF16 => Ok(sys::cudnnDataType_t::CUDNN_DATA_BFLOAT16),
        other => candle_core::bail!("cuDNN graph API: convolutions of f32 or bf16, not {other:?}"),
    }
}

/// An NCHW tensor of `dims` and element type `data`, contiguous, named `uid`, its data
/// aligned to `align` bytes.
fn tensor(dims: [usize; 4], uid: i64, align: i64, data: sys::cudnnDataType_t) -> Result<Desc> {
    let mut d64 = [0i64; 4];
    for (o, v) in d64.iter_mut().zip(dims) {
        *o = int(v, "cuDNN convolution size")? as i64;
    }
    let strides = [d64[1] * d64[2] * d64[3], d64[2] * d64[3], d64[3], 1];
    let t = Desc::new(Kind::CUDNN_BACKEND_TENSOR_DESCRIPTOR)?;
    // SAFETY: `CUDNN_TYPE_DATA_TYPE` is read as `cudnnDataType_t`.
    unsafe { t.set(Attr::CUDNN_ATTR_TENSOR_DATA_TYPE, Type::CUDNN_TYPE_DATA_TYPE, &[data])? };
    t.int64s(Attr::CUDNN_ATTR_TENSOR_DIMENSIONS, &d64)?;
    t.int64s(Attr::CUDNN_ATTR_TENSOR_STRIDES, &strides)?;
    t.int64s(Attr::CUDNN_ATTR_TENSOR_UNIQUE_ID, &[uid])?;
    t.int64s(Attr::CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, &[align])?;
    t.finalize("a tensor")?;
    Ok(t)
}

/// `g`'s cross-correlation, computed in f32 (bf16 operands too: f32 sums, as PyTorch asks).
fn convolution(g: &ConvGeometry) -> Result<Desc> {
    let p = &g.params;
    let i = |v: usize| int(v, "cuDNN convolution size").map(i64::from);
    let (stride, pad, dilation) = (i(p.stride)?, i(p.padding)?, i(p.dilation)?);
    let c = Desc::new(Kind::CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR)?;
    // SAFETY: the data and mode types are read as their C enums.
    unsafe {
        c.set(
            Attr::CUDNN_ATTR_CONVOLUTION_COMP_TYPE,
            Type::CUDNN_TYPE_DATA_TYPE,
            &[sys::cudnnDataType_t::CUDNN_DATA_FLOAT],
        )?;
        let mode = sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION;
        c.set(Attr::CUDNN_ATTR_CONVOLUTION_CONV_MODE, Type::CUDNN_TYPE_CONVOLUTION_MODE, &[mode])?;
    }
    c.int64s(Attr::CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, &[2])?;
    c.int64s(Attr::CUDNN_ATTR_CONVOLUTION_DILATIONS, &[dilation; 2])?;
    c.int64s(Attr::CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, &[stride; 2])?;
    c.int64s(Attr::CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, &[pad; 2])?;
    c.int64s(Attr::CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, &[pad; 2])?;
    c.finalize("the convolution")?;
    Ok(c)
}

/// `primitive`'s operation on `g`, its `x`, `w` and `y` of element type `data` and aligned
/// as `align` says, and the descriptors it was made of (kept alive with it).
fn operation(
    primitive: Primitive,
    g: &ConvGeometry,
    align: [i64; 3],
    data: sys::cudnnDataType_t,
) -> Result<(Desc, Vec<Desc>)> {
    let x = tensor([g.batch, g.cin, g.in_h, g.in_w], UIDS[0], align[0], data)?;
    let w = tensor([g.cout, g.cin, g.k_h, g.k_w], UIDS[1], align[1], data)?;
    let y = tensor([g.batch, g.cout, g.out_h, g.out_w], UIDS[2], align[2], data)?;
    assemble(primitive, [x, w, y], convolution(g)?)
}

/// `primitive`'s operation on tensors `x`, `w`, `y` (for the adjoint `dx`, `w`, `dy`; for
/// the weight gradient `x`, `dw`, `dy`) and convolution `conv`, output overwritten; cuDNN
/// checks their sizes agree.
fn assemble(primitive: Primitive, [x, w, y]: [Desc; 3], conv: Desc) -> Result<(Desc, Vec<Desc>)> {
    use Attr::*;
    let (kind, [ax, aw, ay, ac, alpha, beta]) = match primitive {
        Primitive::Forward => (
            Kind::CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
            [
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
            ],
        ),
        Primitive::Adjoint => (
            Kind::CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
            [
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA,
            ],
        ),
        Primitive::WeightGrad => (
            Kind::CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
            [
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA,
            ],
        ),
    };
    let op = Desc::new(kind)?;
    op.descriptors(ax, &[&x])?;
    op.descriptors(aw, &[&w])?;
    op.descriptors(ay, &[&y])?;
    op.descriptors(ac, &[&conv])?;
    // SAFETY: `CUDNN_TYPE_FLOAT` is read as `float`. The output is overwritten (beta 0).
    unsafe {
        op.set(alpha, Type::CUDNN_TYPE_FLOAT, &[1f32])?;
        op.set(beta, Type::CUDNN_TYPE_FLOAT, &[0f32])?;
    }
    op.finalize("the convolution operation (its sizes disagree)")?;
    Ok((op, vec![x, w, y, conv]))
}

/// An engine configuration that qualifies: it, its engine's name, whether it is
/// deterministic, and whether building its plan compiles a kernel (NVRTC).
struct Config {
    config: Desc,
    name: String,
    deterministic: bool,
    compiled: bool,
}

/// An execution plan built from a [`Config`], and its workspace.
struct Plan {
    plan: Desc,
    name: String,
    deterministic: bool,
    workspace: usize,
    /// It has run once.
    ran: bool,
    /// It failed on its first run, and the fixed choices pass it over ([`plan_index`]).
    failed: bool,
}

/// One primitive's graph on one geometry, its qualifying configurations not yet tried
/// (in the heuristics' order, reversed: the next is last), and the plans built so far;
/// empty (the default) where cuDNN refused the graph.
#[derive(Default)]
struct Graph {
    plans: Vec<Plan>,
    untried: Vec<Config>,
    /// Kept alive while plans made from them may run.
    _descriptors: Vec<Desc>,
}

/// An engine's notes, whether it compiles at run time, and its name, read off a configuration.
fn notes(config: &Desc) -> Result<(EngineNotes, bool, String)> {
    let engine = config.get_descriptor(Attr::CUDNN_ATTR_ENGINECFG_ENGINE, Kind::CUDNN_BACKEND_ENGINE_DESCRIPTOR)?;
    // Read as C `int`s, not the binding's enum: a newer cuDNN may write notes it lacks.
    let mut numerical = [-1i32; 16];
    let mut behaviour = [-1i32; 16];
    let mut index = [0i64];
    // SAFETY: the notes are written as C enums (`int`s), the index as `int64_t`. The
    // numerical notes decide whether the engine may run; the rest only name it.
    let (n, b) = unsafe {
        let _ = engine.get(Attr::CUDNN_ATTR_ENGINE_GLOBAL_INDEX, Type::CUDNN_TYPE_INT64, &mut index);
        let n = engine.get(Attr::CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, Type::CUDNN_TYPE_NUMERICAL_NOTE, &mut numerical)?;
        (
            n,
            engine
                .get(Attr::CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, Type::CUDNN_TYPE_BEHAVIOR_NOTE, &mut behaviour)
                .unwrap_or(0),
        )
    };
    let compiled = sys::cudnnBackendBehaviorNote_t::CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION as i32;
    let compiled = behaviour[..b.min(behaviour.len())].contains(&compiled);
    use sys::cudnnBackendNumericalNote_t as N;
    let has = |note: N| numerical[..n.min(numerical.len())].contains(&(note as i32));
    let notes = EngineNotes {
        tensor_core: has(N::CUDNN_NUMERICAL_NOTE_TENSOR_CORE),
        down_convert: has(N::CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS),
        non_deterministic: has(N::CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC),
    };
    let tags = [
        (notes.tensor_core, " tensor cores"),
        (notes.non_deterministic, " non-deterministic"),
        (compiled, " runtime-compiled"),
    ];
    let tags: String = tags.iter().filter(|t| t.0).map(|t| t.1).collect();
    Ok((notes, compiled, format!("engine {}{tags}", index[0])))
}

impl Graph {
    /// `key`'s graph on `g` on handle `h`, and the configurations of its heuristics that
    /// qualify ([`engine_qualifies`]: tensor cores with TF32 or on bf16 data, as PyTorch
    /// restricts them only on f32 data).
    fn new(h: sys::cudnnHandle_t, g: &ConvGeometry, key: &Key) -> Result<Self> {
        let Key { geometry, tf32, primitive, any_order, dtype, align, .. } = *key;
        let (op, mut keep) = operation(primitive, g, align, data_type(dtype)?)?;
        let graph = Desc::new(Kind::CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR)?;
        // SAFETY: `CUDNN_TYPE_HANDLE` is read as `cudnnHandle_t`.
        unsafe { graph.set(Attr::CUDNN_ATTR_OPERATIONGRAPH_HANDLE, Type::CUDNN_TYPE_HANDLE, &[h])? };
        graph.descriptors(Attr::CUDNN_ATTR_OPERATIONGRAPH_OPS, &[&op])?;
        graph.finalize("the operation graph")?;
        let heuristics = Desc::new(Kind::CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR)?;
        heuristics.descriptors(Attr::CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, &[&graph])?;
        let mode = sys::cudnnBackendHeurMode_t::CUDNN_HEUR_MODE_INSTANT;
        // SAFETY: `CUDNN_TYPE_HEUR_MODE` is read as its C enum.
        unsafe { heuristics.set(Attr::CUDNN_ATTR_ENGINEHEUR_MODE, Type::CUDNN_TYPE_HEUR_MODE, &[mode])? };
        heuristics.finalize("the heuristics")?;
        let results = (Attr::CUDNN_ATTR_ENGINEHEUR_RESULTS, Type::CUDNN_TYPE_BACKEND_DESCRIPTOR);
        // SAFETY: asked for none, cuDNN only counts them.
        let offered = unsafe { heuristics.get::<sys::cudnnBackendDescriptor_t>(results.0, results.1, &mut [])? };
        let configs =
            (0..offered).map(|_| Desc::new(Kind::CUDNN_BACKEND_ENGINECFG_DESCRIPTOR)).collect::<Result<Vec<_>>>()?;
        let mut raw: Vec<_> = configs.iter().map(|c| c.0).collect();
        // SAFETY: `offered` pre-made configuration descriptors, as cuDNN fills them.
        let filled = unsafe { heuristics.get(results.0, results.1, &mut raw)? }.min(configs.len());
        let mut untried = Vec::new();
        let mut seen = Vec::new();
        for config in configs.into_iter().take(filled) {
            let (notes, compiled, name) = notes(&config)?;
            seen.push(format!("{name}{}", if notes.down_convert { " down-converts" } else { "" }));
            if engine_qualifies(notes, tf32 || dtype == DType::BF16, any_order) {
                untried.push(Config { config, name, deterministic: !notes.non_deterministic, compiled });
            }
        }
        tracing::debug!(?primitive, ?geometry, tf32, any_order, ?dtype, ?seen, "cuDNN graph API heuristics");
        untried.reverse();
        keep.extend([op, graph, heuristics]);
        Ok(Graph { plans: Vec::new(), untried, _descriptors: keep })
    }

    /// Builds plans until there are `n + 1` or no configuration is left untried (at
    /// most [`GRAPH_PLANS`]); a configuration that does not build or asks for more than
    /// [`cudnn_workspace_bytes`] is passed over, and after the first plan (the one the fixed
    /// choices take, as PyTorch would) so is one that compiles a kernel, which can take
    /// seconds each (timing's other candidates).
    fn build(&mut self, h: sys::cudnnHandle_t, n: usize) -> Result<()> {
        while self.plans.len() <= n.min(GRAPH_PLANS - 1) {
            let Some(Config { config, name, deterministic, compiled }) = self.untried.pop() else { break };
            if compiled && !self.plans.is_empty() {
                tracing::debug!(engine = %name, "cuDNN graph API: passed over, compiled at run time");
                continue;
            }
            let started = std::time::Instant::now();
            let plan = Desc::new(Kind::CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR)?;
            // SAFETY: `CUDNN_TYPE_HANDLE` is read as `cudnnHandle_t`.
            unsafe { plan.set(Attr::CUDNN_ATTR_EXECUTION_PLAN_HANDLE, Type::CUDNN_TYPE_HANDLE, &[h])? };
            plan.descriptors(Attr::CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, &[&config])?;
            if let Err(e) = plan.finalize("an execution plan") {
                tracing::debug!(engine = %name, %e, "cuDNN graph API: passed over");
                continue;
            }
            let mut bytes = [0i64];
            // SAFETY: `CUDNN_TYPE_INT64` is written as `int64_t`.
            unsafe { plan.get(Attr::CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, Type::CUDNN_TYPE_INT64, &mut bytes)? };
            let workspace = bytes[0].max(0) as usize;
            if workspace > cudnn_workspace_bytes() {
                tracing::debug!(engine = %name, workspace, "cuDNN graph API: passed over, its workspace too large");
                continue;
            }
            let ms = started.elapsed().as_secs_f64() * 1e3;
            tracing::debug!(engine = %name, workspace, ms, "cuDNN graph API: plan built");
            self.plans.push(Plan { plan, name, deterministic, workspace, ran: false, failed: false });
        }
        Ok(())
    }
}

/// What a graph and its plans are kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    device: DeviceId,
    geometry: Shape,
    tf32: bool,
    primitive: Primitive,
    /// Whether non-deterministic engines may run.
    any_order: bool,
    /// The operands' element type: f32 or bf16.
    dtype: DType,
    /// The alignment of `x`, `w` and `y`.
    align: [i64; 3],
}

thread_local! {
    static GRAPHS: RefCell<HashMap<Key, Graph>> = RefCell::new(HashMap::new());
}

/// The largest power of two up to 16 that divides `address`: the alignment cuDNN is told.
fn alignment(address: u64) -> i64 {
    1 << address.trailing_zeros().min(4)
}

/// What [`with_graph`] looks up: a primitive, whether non-deterministic engines may run,
/// the plan asked for, the operands' element type and the alignments of `x`, `w`, `y`.
type Lookup = (Primitive, bool, usize, DType, [i64; 3]);

/// `f` on `primitive`'s graph on `g` for data of `dtype` aligned as `align`, with at least
/// `n + 1` plans built where it has that many configurations.
fn with_graph<T>(
    device: &CudaDevice,
    g: &ConvGeometry,
    (primitive, any_order, n, dtype, align): Lookup,
    f: impl FnOnce(sys::cudnnHandle_t, &mut Graph) -> Result<T>,
) -> Result<T> {
    use std::collections::hash_map::Entry;
    let h = super::cudnn::handle(device)?;
    let key = Key { device: device.id(), geometry: shape(g), tf32: conv_tf32(), primitive, any_order, dtype, align };
    GRAPHS.with(|graphs| {
        let mut graphs = graphs.borrow_mut();
        let graph = match graphs.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            // A graph cuDNN cannot describe or has no heuristics for runs another way.
            Entry::Vacant(e) => e.insert(Graph::new(h, g, &key).unwrap_or_else(|error| {
                let geometry = key.geometry;
                tracing::warn!(?primitive, ?geometry, ?dtype, %error, "cuDNN graph API: no plan, columns instead");
                Graph::default()
            })),
        };
        graph.build(h, n)?;
        f(h, graph)
    })
}

/// The device address of the values a contiguous layout covers in `s` (f32 or bf16), and
/// the guard that orders cuDNN's read after earlier writes on `stream`.
fn address<'a>(s: &'a CudaStorage, l: &Layout, stream: &'a CudaStream) -> Result<(u64, SyncOnDrop<'a>)> {
    let Some((start, end)) = l.contiguous_offsets() else {
        return Err(candle_core::Error::RequiresContiguous { op: OP });
    };
    let (len, size, (base, guard)) = match &s.slice {
        CudaStorageSlice::F32(v) => (v.len(), 4, v.device_ptr(stream)),
        CudaStorageSlice::BF16(v) => (v.len(), 2, v.device_ptr(stream)),
        _ => candle_core::bail!("{OP}: operands of f32 or bf16, not {:?}", s.dtype()),
    };
    if start > end || end > len {
        candle_core::bail!("{OP}: values {start}..{end} of a buffer of {len}");
    }
    Ok((base + (start * size) as u64, guard))
}

/// The device address of a whole fresh output buffer, and the guard that orders later
/// reads after cuDNN's write.
fn address_mut<'a>(s: &'a mut CudaStorage, stream: &'a CudaStream) -> Result<(u64, SyncOnDrop<'a>)> {
    match &mut s.slice {
        CudaStorageSlice::F32(v) => Ok(v.device_ptr_mut(stream)),
        CudaStorageSlice::BF16(v) => Ok(v.device_ptr_mut(stream)),
        _ => candle_core::bail!("{OP}: an output of f32 or bf16"),
    }
}

/// The alignment declared for a primitive's output: a fresh allocation's (`cudaMalloc`'s
/// are 256-byte aligned; [`run`] checks).
const OUT_ALIGNMENT: i64 = 16;

/// `primitive`'s operands `a`, `b` and output `out` in the slots of `x`, `w` and `y`
/// ([`UIDS`]' order): the forward's `x`, `w` → `y`; the adjoint's `dy`, `w` → `dx`; the
/// weight gradient's `x`, `dy` → `dw`.
fn slots<T>(primitive: Primitive, a: T, b: T, out: T) -> [T; 3] {
    match primitive {
        Primitive::Forward => [a, b, out],
        Primitive::Adjoint => [out, b, a],
        Primitive::WeightGrad => [a, out, b],
    }
}

/// The alignments of `a`, `b` and a fresh output, as `x`, `w`, `y` for `primitive`.
fn alignments(primitive: Primitive, a: u64, b: u64) -> [i64; 3] {
    slots(primitive, alignment(a), alignment(b), OUT_ALIGNMENT)
}

/// The alignments cuDNN is told for `primitive` on `a` and `b` and a fresh output (`x`,
/// `w`, `y`): plans are kept per alignment, so timing keeps its choices per alignment too.
pub(super) fn operand_alignments(primitive: Primitive, a: Operand, b: Operand) -> Result<[i64; 3]> {
    let stream = a.0.device.cuda_stream();
    let ((pa, _ga), (pb, _gb)) = (address(a.0, a.1, &stream)?, address(b.0, b.1, &stream)?);
    Ok(alignments(primitive, pa, pb))
}

/// The plans [`run`] can take for `primitive` on `g` with `a` and `b` (with `any_order`,
/// non-deterministic ones too), in order, all built: each named, and whether it is
/// deterministic.
pub(super) fn engines(
    (primitive, any_order): (Primitive, bool),
    g: &ConvGeometry,
    a: Operand,
    b: Operand,
) -> Result<Vec<(String, bool)>> {
    let pick = (primitive, any_order, GRAPH_PLANS - 1, a.0.dtype(), operand_alignments(primitive, a, b)?);
    with_graph(&a.0.device, g, pick, |_, graph| {
        let name = |(i, p): (usize, &Plan)| (format!("graph #{i} {} {} B", p.name, p.workspace), p.deterministic);
        Ok(graph.plans.iter().enumerate().map(name).collect())
    })
}

/// As `cudnn::run`, with the graph API's `nth` plan (counting non-deterministic ones with
/// `any_order`; [`plan_index`]: for `nth` 0 the first that runs), on f32 or bf16
/// operands, the output of their element type; `None` where there are not that many.
pub(super) fn run(
    (primitive, any_order, nth): (Primitive, bool, usize),
    g: &ConvGeometry,
    a: Operand,
    b: Operand,
) -> Result<Option<CudaStorage>> {
    let dtype = a.0.dtype();
    if b.0.dtype() != dtype {
        candle_core::bail!("{OP}: operands of {dtype:?} and {:?}", b.0.dtype());
    }
    let stream = a.0.device.cuda_stream();
    let ((pa, _ga), (pb, _gb)) = (address(a.0, a.1, &stream)?, address(b.0, b.1, &stream)?);
    let align = alignments(primitive, pa, pb);
    let (device, out) = (&a.0.device, (primitive, dtype, primitive.output_len(g)));
    with_graph(device, g, (primitive, any_order, nth, dtype, align), |h, graph| loop {
        // Where there is none, another way runs.
        let Some(i) = plan_index(graph.plans.iter().map(|p| p.failed), nth) else { return Ok(None) };
        let plan = &mut graph.plans[i];
        match execute(h, plan, device, out, [pa, pb]) {
            Ok(y) => {
                plan.ran = true;
                return Ok(Some(y));
            }
            Err(e) if nth == 0 && !plan.ran => {
                tracing::warn!(engine = %plan.name, %e, "cuDNN graph API: a plan failed on its first run; the next instead");
                plan.failed = true;
                let built = graph.plans.len();
                graph.build(h, built)?;
            }
            Err(e) => return Err(e),
        }
    })
}

/// `plan` run on handle `h` on `device` for `primitive` on operands of `dtype` at device
/// addresses `a` and `b` (their guards held by the caller): a fresh output of `len`
/// values, allocated only now.
fn execute(
    h: sys::cudnnHandle_t,
    plan: &Plan,
    device: &CudaDevice,
    (primitive, dtype, len): (Primitive, DType, usize),
    [pa, pb]: [u64; 2],
) -> Result<CudaStorage> {
    let stream = device.cuda_stream();
    // SAFETY: cuDNN writes all `len` values (beta 0).
    let mut out = unsafe { device.alloc_uninit(&len.into(), dtype)? };
    let mut space = match plan.workspace {
        0 => None,
        // SAFETY: only cuDNN touches the workspace.
        n => Some(unsafe { device.alloc::<u8>(n)? }),
    };
    let (po, out_guard) = address_mut(&mut out, &stream)?;
    if alignment(po) < OUT_ALIGNMENT {
        candle_core::bail!("{OP}: an output allocation less aligned than declared to cuDNN");
    }
    let (ps, space_guard) = space.as_mut().map(|s| s.device_ptr_mut(&stream)).unzip();
    let data = slots(primitive, pa, pb, po).map(|p| p as *mut c_void);
    let workspace = ps.map_or(std::ptr::null_mut(), |p| p as *mut c_void);
    let pack = Desc::new(Kind::CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR)?;
    pack.int64s(Attr::CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, &UIDS)?;
    // SAFETY: `CUDNN_TYPE_VOID_PTR` is read as `void*`: the three device buffers, each of
    // its tensor's size, element type and alignment, and the workspace of the plan's size.
    unsafe {
        pack.set(Attr::CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, Type::CUDNN_TYPE_VOID_PTR, &data)?;
        pack.set(Attr::CUDNN_ATTR_VARIANT_PACK_WORKSPACE, Type::CUDNN_TYPE_VOID_PTR, &[workspace])?;
    }
    pack.finalize("the variant pack")?;
    // SAFETY: the plan was built on this handle, whose stream all these buffers are on.
    check(unsafe { sys::cudnnBackendExecute(h, plan.plan.0, pack.0) }, "executing a plan")?;
    // The guards borrow the buffers until the launch is recorded; then `out` is handed over.
    drop((out_guard, space_guard));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::ConvParams;

    /// cuDNN checks an operation's sizes as it is finalized, with no GPU needed (so this
    /// runs wherever the `cudnn` build's tests start): DCGAN's geometries and padded,
    /// strided, dilated and rectangular ones describe consistent operations for all
    /// three primitives, in f32 and bf16, however aligned; an output a pixel short, or a
    /// kernel channel off, does not.
    #[test]
    fn the_operations_describe_consistent_convolutions() {
        let dilated = ConvParams { dilation: 2, ..ConvParams::new(1, 2) };
        let geometries = [
            ConvGeometry::new([64, 3, 64, 64], [64, 3, 4, 4], ConvParams::new(2, 1)),
            ConvGeometry::new([256, 256, 8, 8], [512, 256, 4, 4], ConvParams::new(2, 1)),
            ConvGeometry::new([256, 512, 4, 4], [1, 512, 4, 4], ConvParams::new(1, 0)),
            ConvGeometry::new([3, 5, 9, 7], [4, 5, 3, 2], ConvParams::new(2, 0)),
            ConvGeometry::new([2, 4, 11, 6], [3, 4, 3, 3], dilated),
        ];
        let primitives = [Primitive::Forward, Primitive::Adjoint, Primitive::WeightGrad];
        let types = [DType::F32, DType::BF16].map(|t| data_type(t).unwrap());
        for (g, data) in geometries.map(|g| g.unwrap()).into_iter().flat_map(|g| types.map(|t| (g, t))) {
            for p in primitives {
                // bf16 values may sit 2 bytes apart from a 16-byte boundary; f32 ones not.
                let two = [2; 3];
                if data == sys::cudnnDataType_t::CUDNN_DATA_FLOAT {
                    assert!(operation(p, &g, two, data).is_err(), "{p:?} on {g:?}, f32 aligned to 2 bytes");
                }
                let aligns = if data == sys::cudnnDataType_t::CUDNN_DATA_FLOAT {
                    &[[16; 3], [4, 16, 8]][..]
                } else {
                    &[[16; 3], [4, 16, 8], two][..]
                };
                for &align in aligns {
                    let (_, parts) =
                        operation(p, &g, align, data).unwrap_or_else(|e| panic!("{p:?} on {g:?} ({data:?}): {e}"));
                    assert_eq!(parts.len(), 4);
                }
                let short = ConvGeometry { out_h: g.out_h - 1, ..g };
                assert!(operation(p, &short, [16; 3], data).is_err(), "{p:?} on {short:?}");
                let x = tensor([g.batch, g.cin + 1, g.in_h, g.in_w], UIDS[0], 16, data).unwrap();
                let w = tensor([g.cout, g.cin, g.k_h, g.k_w], UIDS[1], 16, data).unwrap();
                let y = tensor([g.batch, g.cout, g.out_h, g.out_w], UIDS[2], 16, data).unwrap();
                let conv = convolution(&g).unwrap();
                assert!(assemble(p, [x, w, y], conv).is_err(), "{p:?} on {g:?} with an input channel more");
            }
        }
    }

    #[test]
    fn only_f32_and_bf16_operands_are_described() {
        assert_eq!(data_type(DType::F32).unwrap(), sys::cudnnDataType_t::CUDNN_DATA_FLOAT);
        assert_eq!(data_type(DType::BF16).unwrap(), sys::cudnnDataType_t::CUDNN_DATA_BFLOAT16);
        for other in [DType::F16, DType::F64, DType::U8] {
            assert!(data_type(other).is_err(), "{other:?}");
        }
    }

    #[test]
    fn alignment_is_the_largest_power_of_two_up_to_16_dividing_the_address() {
        assert_eq!(alignment(0x7f00_0000_0000), 16);
        assert_eq!(alignment(0x7f00_0000_0104), 4);
        assert_eq!(alignment(0x7f00_0000_0108), 8);
        assert_eq!(alignment(0x7f00_0000_0102), 2);
        assert_eq!(alignment(0x7f00_0000_0101), 1);
        assert_eq!(alignments(Primitive::Adjoint, 0x104, 0x108), [OUT_ALIGNMENT, 8, 4]);
        assert_eq!(alignments(Primitive::WeightGrad, 0x104, 0x108), [4, OUT_ALIGNMENT, 8]);
    }
}
