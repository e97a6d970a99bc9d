//! The three convolution primitives through cuDNN (feature `cudnn`), f32 NCHW: forward
//! `cudnnConvolutionForward`, adjoint `cudnnConvolutionBackwardData`, weight gradient
//! `cudnnConvolutionBackwardFilter`. All three describe the same forward convolution
//! (`x (N, C, H, W)`, `w (O, C, kh, kw)`, `y (N, O, H', W')`), so one set of descriptors
//! serves a geometry. A primitive's algorithms are those of cuDNN's heuristics
//! (`…Algorithm_v7`, as PyTorch picks without `cudnn.benchmark`) that
//! [`crate::cuda_conv::qualifying`] allows, in the heuristics' order, deterministic only
//! or not: [`run`] takes the `n`th (the first deterministic by default, the first of
//! all with `GANZOO_CUDA_CONV=cudnn-any`, any with `GANZOO_CUDA_CONV=timed`). Handles,
//! descriptors and algorithms are kept per thread (cuDNN handles are not `Send`), per
//! device and geometry. `None` from [`run`]: no
//! such algorithm, and the caller runs the columns instead.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::cuda_backend::cudarc::cudnn::{result, sys};
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut};
use candle_core::cuda_backend::{CudaDevice, CudaStorage, DeviceId};
use candle_core::Result;

use super::conv::{shape, Operand, Primitive, Shape};
use super::{int, view};
use crate::cuda_conv::{conv_tf32, cudnn_workspace_bytes, qualifying, Offer};
use crate::geometry::ConvGeometry;

/// An offer's algorithm and the math type it computes in.
type Choice = (Algo, sys::cudnnMathType_t);

/// The algorithm taken for one primitive.
#[derive(Debug, Clone, Copy)]
enum Algo {
    Forward(sys::cudnnConvolutionFwdAlgo_t),
    Data(sys::cudnnConvolutionBwdDataAlgo_t),
    Filter(sys::cudnnConvolutionBwdFilterAlgo_t),
}

fn cudnn_err(e: result::CudnnError) -> candle_core::Error {
    candle_core::Error::Msg(format!("cuDNN: {e:?}"))
}

/// A cuDNN handle on the device's stream.
struct Handle(sys::cudnnHandle_t);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: created by `cudnnCreate`, destroyed once.
        let _ = unsafe { result::destroy_handle(self.0) };
    }
}

/// The descriptors of one geometry's forward convolution, in one math type.
struct Descriptors {
    x: sys::cudnnTensorDescriptor_t,
    y: sys::cudnnTensorDescriptor_t,
    w: sys::cudnnFilterDescriptor_t,
    conv: sys::cudnnConvolutionDescriptor_t,
}

impl Drop for Descriptors {
    fn drop(&mut self) {
        // SAFETY: each was created once by `Descriptors::new` and is destroyed once.
        unsafe {
            let _ = result::destroy_tensor_descriptor(self.x);
            let _ = result::destroy_tensor_descriptor(self.y);
            let _ = result::destroy_filter_descriptor(self.w);
            let _ = result::destroy_convolution_descriptor(self.conv);
        }
    }
}

impl Descriptors {
    fn new(g: &ConvGeometry, tf32: bool) -> Result<Self> {
        let i = |v: usize| int(v, "cuDNN convolution size");
        let (f32_, nchw) = (sys::cudnnDataType_t::CUDNN_DATA_FLOAT, sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW);
        let d = Descriptors {
            x: result::create_tensor_descriptor().map_err(cudnn_err)?,
            y: result::create_tensor_descriptor().map_err(cudnn_err)?,
            w: result::create_filter_descriptor().map_err(cudnn_err)?,
            conv: result::create_convolution_descriptor().map_err(cudnn_err)?,
        };
        let p = &g.params;
        let (pad, stride, dilation) = (i(p.padding)?, i(p.stride)?, i(p.dilation)?);
        // Exact f32 is FMA math, as PyTorch sets when TF32 is off; TF32 is cuDNN's default math.
        let math = if tf32 { sys::cudnnMathType_t::CUDNN_DEFAULT_MATH } else { sys::cudnnMathType_t::CUDNN_FMA_MATH };
        // SAFETY: the descriptors were just created; the sizes are checked `int`s.
        unsafe {
            result::set_tensor4d_descriptor(d.x, nchw, f32_, [i(g.batch)?, i(g.cin)?, i(g.in_h)?, i(g.in_w)?])
                .map_err(cudnn_err)?;
            result::set_tensor4d_descriptor(d.y, nchw, f32_, [i(g.batch)?, i(g.cout)?, i(g.out_h)?, i(g.out_w)?])
                .map_err(cudnn_err)?;
            result::set_filter4d_descriptor(d.w, f32_, nchw, [i(g.cout)?, i(g.cin)?, i(g.k_h)?, i(g.k_w)?])
                .map_err(cudnn_err)?;
            let mode = sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION;
            result::set_convolution2d_descriptor(d.conv, pad, pad, stride, stride, dilation, dilation, mode, f32_)
                .map_err(cudnn_err)?;
            result::set_convolution_math_type(d.conv, math).map_err(cudnn_err)?;
        }
        Ok(d)
    }
}

/// A qualifying algorithm of a primitive on one geometry: it, its math type, its
/// workspace, whether it is deterministic.
type Plan = (Algo, sys::cudnnMathType_t, usize, bool);

/// Per geometry and math: descriptors and plans.
#[derive(Default)]
struct State {
    descriptors: HashMap<(Shape, bool), Descriptors>,
    /// Keyed also by whether non-deterministic algorithms may be taken.
    plans: HashMap<(Shape, bool, Primitive, bool), Vec<Plan>>,
}

thread_local! {
    /// Per device: its cuDNN handle, kept for the thread's life (this module's and
    /// `cudnn_graph`'s calls share it).
    static HANDLES: RefCell<HashMap<DeviceId, Handle>> = RefCell::new(HashMap::new());
    static STATE: RefCell<HashMap<DeviceId, State>> = RefCell::new(HashMap::new());
}

/// This thread's cuDNN handle for `device`, on the stream Candle launches on; made on
/// first use and never destroyed before the thread ends, so the raw handle stays valid.
pub(super) fn handle(device: &CudaDevice) -> Result<sys::cudnnHandle_t> {
    HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        if let Some(h) = handles.get(&device.id()) {
            return Ok(h.0);
        }
        let stream = device.cuda_stream();
        stream.context().bind_to_thread().map_err(|e| candle_core::Error::Msg(format!("cuDNN: {e:?}")))?;
        let handle = Handle(result::create_handle().map_err(cudnn_err)?);
        // SAFETY: a live handle, set to the stream Candle launches on.
        unsafe { result::set_stream(handle.0, stream.cu_stream() as *mut _) }.map_err(cudnn_err)?;
        let h = handle.0;
        handles.insert(device.id(), handle);
        Ok(h)
    })
}

fn offer(status: sys::cudnnStatus_t, det: sys::cudnnDeterminism_t, math: sys::cudnnMathType_t, mem: usize) -> Offer {
    Offer {
        runs: status == sys::cudnnStatus_t::CUDNN_STATUS_SUCCESS,
        deterministic: det == sys::cudnnDeterminism_t::CUDNN_DETERMINISTIC,
        tensor_cores: math != sys::cudnnMathType_t::CUDNN_FMA_MATH,
        workspace: mem,
    }
}

/// Up to this many offers are asked for (every algorithm of the largest family).
const OFFERS: usize = 8;

/// The offers a heuristics call (`ask`: the array to fill, the count to set) wrote, each
/// read as its algorithm and [`Offer`].
///
/// # Safety
/// `ask` writes at most [`OFFERS`] results into the array and their number into the count.
unsafe fn query<P: Copy>(
    ask: impl FnOnce(*mut P, *mut i32) -> std::result::Result<(), result::CudnnError>,
    read: impl Fn(&P) -> (Choice, Offer),
) -> Result<(Vec<Choice>, Vec<Offer>)> {
    // SAFETY: the perf structs are plain C data, valid all zero.
    let mut p = [unsafe { std::mem::zeroed::<P>() }; OFFERS];
    let mut n = 0;
    ask(p.as_mut_ptr(), &mut n).map_err(cudnn_err)?;
    Ok(p[..(n.max(0) as usize).min(OFFERS)].iter().map(read).unzip())
}

/// The heuristics' offers for `primitive` on `d` (`g`'s descriptors), and the plans of
/// those [`qualifying`] allows (with `any_order`, non-deterministic ones too), in order.
fn plans(h: sys::cudnnHandle_t, d: &Descriptors, g: &ConvGeometry, key: (Primitive, bool, bool)) -> Result<Vec<Plan>> {
    let (primitive, tf32, any_order) = key;
    let k = OFFERS as i32;
    // SAFETY: the handle and descriptors are live, and each call writes at most `k` results.
    let (algos, offers) = unsafe {
        match primitive {
            Primitive::Forward => query(
                |p, n| result::get_convolution_forward_algorithm(h, d.x, d.w, d.conv, d.y, k, n, p),
                |p: &sys::cudnnConvolutionFwdAlgoPerf_t| {
                    ((Algo::Forward(p.algo), p.mathType), offer(p.status, p.determinism, p.mathType, p.memory))
                },
            ),
            Primitive::Adjoint => query(
                |p, n| result::get_convolution_backward_data_algorithm(h, d.w, d.y, d.conv, d.x, k, n, p),
                |p: &sys::cudnnConvolutionBwdDataAlgoPerf_t| {
                    ((Algo::Data(p.algo), p.mathType), offer(p.status, p.determinism, p.mathType, p.memory))
                },
            ),
            Primitive::WeightGrad => query(
                |p, n| result::get_convolution_backward_filter_algorithm(h, d.x, d.y, d.conv, d.w, k, n, p),
                |p: &sys::cudnnConvolutionBwdFilterAlgoPerf_t| {
                    ((Algo::Filter(p.algo), p.mathType), offer(p.status, p.determinism, p.mathType, p.memory))
                },
            ),
        }
    }?;
    let taken = qualifying(&offers, (tf32, any_order), cudnn_workspace_bytes());
    if taken.is_empty() {
        tracing::warn!(
            ?primitive,
            ?offers,
            "cuDNN offers no algorithm that qualifies (within the workspace, deterministic unless timed): columns instead"
        );
    }
    let plan = |i: usize| workspace(h, d, algos[i], tf32).map(|(a, m, w)| (a, m, w, offers[i].deterministic));
    let plans = taken.into_iter().map(plan).collect::<Result<Vec<_>>>()?;
    tracing::debug!(?primitive, geometry = ?shape(g), ?plans, ?offers, "cuDNN algorithms");
    Ok(plans)
}

/// `choice`'s plan: exact f32 keeps FMA math; with TF32 the descriptor takes the offer's
/// math type, as PyTorch sets it (cuDNN decides on tensor cores from algorithm and math
/// type both); the workspace the algorithm asks for at launch (the offer's is an estimate).
fn workspace(
    h: sys::cudnnHandle_t,
    d: &Descriptors,
    (algo, math): Choice,
    tf32: bool,
) -> Result<(Algo, sys::cudnnMathType_t, usize)> {
    let math = if tf32 { math } else { sys::cudnnMathType_t::CUDNN_FMA_MATH };
    // SAFETY: a live handle and descriptors; the math type is set before the size is asked, as at launch.
    let bytes = unsafe {
        result::set_convolution_math_type(d.conv, math).map_err(cudnn_err)?;
        match algo {
            Algo::Forward(a) => result::get_convolution_forward_workspace_size(h, d.x, d.w, d.conv, d.y, a),
            Algo::Data(a) => result::get_convolution_backward_data_workspace_size(h, d.w, d.y, d.conv, d.x, a),
            Algo::Filter(a) => result::get_convolution_backward_filter_workspace_size(h, d.x, d.y, d.conv, d.w, a),
        }
    }
    .map_err(cudnn_err)?;
    Ok((algo, math, bytes))
}

/// `f` on the device's handle and `g`'s descriptors and `primitive`'s plans (with
/// `any_order`, non-deterministic algorithms too), made or found first.
fn with_plans<T>(
    device: &CudaDevice,
    g: &ConvGeometry,
    (primitive, any_order): (Primitive, bool),
    f: impl FnOnce(sys::cudnnHandle_t, &Descriptors, &[Plan]) -> Result<T>,
) -> Result<T> {
    use std::collections::hash_map::Entry;
    let (tf32, key) = (conv_tf32(), shape(g));
    let h = handle(device)?;
    STATE.with(|states| {
        let mut states = states.borrow_mut();
        let state = states.entry(device.id()).or_default();
        let d = match state.descriptors.entry((key, tf32)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Descriptors::new(g, tf32)?),
        };
        let plans = match state.plans.entry((key, tf32, primitive, any_order)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(plans(h, d, g, (primitive, tf32, any_order))?),
        };
        f(h, d, plans)
    })
}

/// The algorithms [`run`] can take for `primitive` on `g` (with `any_order`,
/// non-deterministic ones too), in order: each named, and whether it is deterministic.
pub(super) fn algorithms(
    device: &CudaDevice,
    g: &ConvGeometry,
    pick: (Primitive, bool),
) -> Result<Vec<(String, bool)>> {
    with_plans(device, g, pick, |_, _, plans| {
        let name = |&(algo, math, bytes, deterministic): &Plan| {
            let order = if deterministic { "" } else { " non-deterministic" };
            (format!("{algo:?} {math:?} {bytes} B{order}"), deterministic)
        };
        Ok(plans.iter().map(name).collect())
    })
}

/// The first of `plans` whose workspace allocates, with it (`None`: none needed); with
/// `pass_over`, one that fails to allocate is passed over (warned once), else its error
/// returned. `None` where none allocates.
fn with_workspace(
    device: &CudaDevice,
    plans: &[Plan],
    pass_over: bool,
) -> Result<Option<(Plan, Option<CudaSlice<u8>>)>> {
    for &plan in plans {
        let (algo, _, workspace, _) = plan;
        let space = match workspace {
            0 => None,
            // SAFETY: only cuDNN touches the workspace.
            n => match unsafe { device.alloc::<u8>(n) } {
                Ok(space) => Some(space),
                Err(e) if pass_over => {
                    // Likely again at every call of the layer: warned once, then logged.
                    static WARNED: AtomicBool = AtomicBool::new(false);
                    let what = "cuDNN: an algorithm's workspace does not allocate; the next one instead";
                    match WARNED.swap(true, Ordering::Relaxed) {
                        false => tracing::warn!(?algo, workspace = n, %e, "{what} (warned once)"),
                        true => tracing::debug!(?algo, workspace = n, %e, "{what}"),
                    }
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        return Ok(Some((plan, space)));
    }
    Ok(None)
}

/// `(1, 0)`: cuDNN's `alpha` and `beta`, the output overwritten.
const ONE: f32 = 1.0;
const ZERO: f32 = 0.0;

/// `primitive` on `g` with its `nth` algorithm (counting non-deterministic ones with
/// `any_order`): `a` and `b` (contiguous f32) in — for the forward `x` and `w`, the
/// adjoint `dy` and `w`, the weight gradient `x` and `dy` — the output out; `None` where
/// there are not that many. The fixed choice (`nth` 0) passes over an algorithm whose
/// workspace fails to allocate, as PyTorch passes over a plan (`try_plans`), and `None`
/// where none allocates; a timed candidate's failure is an error (timing leaves it out).
pub(super) fn run(
    (primitive, any_order, nth): (Primitive, bool, usize),
    g: &ConvGeometry,
    a: Operand,
    b: Operand,
) -> Result<Option<CudaStorage>> {
    let op = "ganzoo-convolution (cuDNN)";
    let (av, bv) = (view(a.0, a.1, op)?, view(b.0, b.1, op)?);
    let out_len = primitive.output_len(g);
    let device = &a.0.device;
    let stream = device.cuda_stream();
    with_plans(device, g, (primitive, any_order), |h, d, plans| {
        let tried = if nth == 0 { plans } else { plans.get(nth..=nth).unwrap_or_default() };
        let taken = with_workspace(device, tried, nth == 0)?;
        // Where no algorithm is taken the columns run, so the output is allocated only now.
        let Some(((algo, math, workspace, _), mut space)) = taken else { return Ok(None) };
        // The three primitives share the descriptor and may differ in math type.
        // SAFETY: a live descriptor.
        unsafe { result::set_convolution_math_type(d.conv, math) }.map_err(cudnn_err)?;
        // SAFETY: cuDNN writes all `out_len` values (beta 0).
        let mut out = unsafe { device.alloc::<f32>(out_len)? };
        let (pa, _ga) = av.device_ptr(&stream);
        let (pb, _gb) = bv.device_ptr(&stream);
        let (po, out_guard) = out.device_ptr_mut(&stream);
        let (ps, space_guard) = space.as_mut().map(|s| s.device_ptr_mut(&stream)).unzip();
        let ps = ps.map_or(std::ptr::null_mut(), |p| p as *mut c_void);
        let (pa, pb, po) = (pa as *const c_void, pb as *const c_void, po as *mut c_void);
        let (one, zero) = (&ONE as *const f32 as *const c_void, &ZERO as *const f32 as *const c_void);
        // SAFETY: the descriptors describe these buffers (the geometry's sizes, f32 NCHW,
        // contiguous), the workspace is the size the algorithm asked for, and all lie on
        // the stream the handle is set to.
        unsafe {
            match algo {
                Algo::Forward(al) => {
                    result::convolution_forward(h, one, d.x, pa, d.w, pb, d.conv, al, ps, workspace, zero, d.y, po)
                }
                Algo::Data(al) => result::convolution_backward_data(
                    h, one, d.w, pb, d.y, pa, d.conv, al, ps, workspace, zero, d.x, po,
                ),
                Algo::Filter(al) => result::convolution_backward_filter(
                    h, one, d.x, pa, d.y, pb, d.conv, al, ps, workspace, zero, d.w, po,
                ),
            }
        }
        .map_err(cudnn_err)?;
        // The guards borrow the buffers until the launch is recorded; then `out` is handed over.
        drop((out_guard, space_guard));
        Ok(Some(CudaStorage::wrap_cuda_slice(out, device.clone())))
    })
}
