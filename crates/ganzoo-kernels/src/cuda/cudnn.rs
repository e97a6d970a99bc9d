//! The three convolution primitives through cuDNN (feature `cudnn`), f32 NCHW: forward
//! `cudnnConvolutionForward`, adjoint `cudnnConvolutionBackwardData`, weight gradient
//! `cudnnConvolutionBackwardFilter`. All three describe the same forward convolution
//! (`x (N, C, H, W)`, `w (O, C, kh, kw)`, `y (N, O, H', W')`), so one set of descriptors
//! serves a geometry. Each primitive's algorithm is the first of cuDNN's heuristics
//! (`…Algorithm_v7`, as PyTorch picks without `cudnn.benchmark`) that
//! [`crate::cuda_conv::choose`] takes; handles, descriptors and choices are kept per
//! thread (cuDNN handles are not `Send`), per device and geometry. `None` from a
//! primitive: no algorithm qualified, and the caller runs the columns instead.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;

use candle_core::cuda_backend::cudarc::cudnn::{result, sys};
use candle_core::cuda_backend::cudarc::driver::{DevicePtr, DevicePtrMut};
use candle_core::cuda_backend::{CudaDevice, CudaStorage, DeviceId};
use candle_core::{Layout, Result};

use super::{int, view};
use crate::cuda_conv::{choose, conv_tf32, Offer};
use crate::geometry::ConvGeometry;

/// The primitives, as the plans' keys know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Primitive {
    Forward,
    Adjoint,
    WeightGrad,
}

/// An offer's algorithm and the math type it computes in.
type Choice = (Algo, sys::cudnnMathType_t);

/// The algorithm taken for one primitive.
#[derive(Debug, Clone, Copy)]
enum Algo {
    Forward(sys::cudnnConvolutionFwdAlgo_t),
    Data(sys::cudnnConvolutionBwdDataAlgo_t),
    Filter(sys::cudnnConvolutionBwdFilterAlgo_t),
}

/// What a geometry's sizes are as a key: batch, channels in and out, input and kernel
/// sides, stride, padding, dilation.
type Sizes = [usize; 10];

fn sizes(g: &ConvGeometry) -> Sizes {
    let p = &g.params;
    [g.batch, g.cin, g.cout, g.in_h, g.in_w, g.k_h, g.k_w, p.stride, p.padding, p.dilation]
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

/// A primitive's algorithm, math type and workspace on one geometry; `None`: none qualified.
type Plan = Option<(Algo, sys::cudnnMathType_t, usize)>;

/// Per device: its handle; per geometry and math: descriptors and plans.
struct State {
    handle: Handle,
    descriptors: HashMap<(Sizes, bool), Descriptors>,
    plans: HashMap<(Sizes, bool, Primitive), Plan>,
}

thread_local! {
    static STATE: RefCell<HashMap<DeviceId, State>> = RefCell::new(HashMap::new());
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

/// The heuristics' offers for `primitive` on `d` (`g`'s descriptors), and the one [`choose`] takes.
fn plan(h: sys::cudnnHandle_t, d: &Descriptors, g: &ConvGeometry, primitive: Primitive, tf32: bool) -> Result<Plan> {
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
    let Some(i) = choose(&offers, tf32) else {
        tracing::warn!(
            ?primitive,
            ?offers,
            "cuDNN offers no deterministic algorithm within the workspace: columns instead"
        );
        return Ok(None);
    };
    let (algo, math) = algos[i];
    // Exact f32 keeps FMA math; with TF32 the descriptor takes the offer's math type, as
    // PyTorch sets it (cuDNN decides on tensor cores from algorithm and math type both).
    let math = if tf32 { math } else { sys::cudnnMathType_t::CUDNN_FMA_MATH };
    // The workspace the chosen algorithm asks for at launch (the offer's is an estimate).
    // SAFETY: as above; the math type is set before the size is asked, as at launch.
    let workspace = unsafe {
        result::set_convolution_math_type(d.conv, math).map_err(cudnn_err)?;
        match algo {
            Algo::Forward(a) => result::get_convolution_forward_workspace_size(h, d.x, d.w, d.conv, d.y, a),
            Algo::Data(a) => result::get_convolution_backward_data_workspace_size(h, d.w, d.y, d.conv, d.x, a),
            Algo::Filter(a) => result::get_convolution_backward_filter_workspace_size(h, d.x, d.y, d.conv, d.w, a),
        }
    }
    .map_err(cudnn_err)?;
    tracing::debug!(?primitive, geometry = ?sizes(g), ?algo, ?math, workspace, ?offers, "cuDNN algorithm");
    Ok(Some((algo, math, workspace)))
}

/// Runs `primitive` on `g` with `launch` (handle, descriptors, algorithm, workspace), the
/// device's state made or found first; `Ok(None)` when no algorithm qualified.
fn with_plan<T>(
    device: &CudaDevice,
    g: &ConvGeometry,
    primitive: Primitive,
    launch: impl FnOnce(sys::cudnnHandle_t, &Descriptors, Algo, usize) -> Result<T>,
) -> Result<Option<T>> {
    let tf32 = conv_tf32();
    let key = sizes(g);
    STATE.with(|states| {
        let mut states = states.borrow_mut();
        let state = match states.entry(device.id()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let stream = device.cuda_stream();
                stream.context().bind_to_thread().map_err(|e| candle_core::Error::Msg(format!("cuDNN: {e:?}")))?;
                let handle = Handle(result::create_handle().map_err(cudnn_err)?);
                // SAFETY: a live handle, set to the stream Candle launches on.
                unsafe { result::set_stream(handle.0, stream.cu_stream() as *mut _) }.map_err(cudnn_err)?;
                e.insert(State { handle, descriptors: HashMap::new(), plans: HashMap::new() })
            }
        };
        let h = state.handle.0;
        let d = match state.descriptors.entry((key, tf32)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Descriptors::new(g, tf32)?),
        };
        let chosen = match state.plans.get(&(key, tf32, primitive)) {
            Some(p) => *p,
            None => {
                let p = plan(h, d, g, primitive, tf32)?;
                state.plans.insert((key, tf32, primitive), p);
                p
            }
        };
        let Some((algo, math, workspace)) = chosen else { return Ok(None) };
        // The three primitives share the descriptor and may differ in math type.
        // SAFETY: a live descriptor.
        unsafe { result::set_convolution_math_type(d.conv, math) }.map_err(cudnn_err)?;
        launch(h, d, algo, workspace).map(Some)
    })
}

/// `(1, 0)`: cuDNN's `alpha` and `beta`, the output overwritten.
const ONE: f32 = 1.0;
const ZERO: f32 = 0.0;

/// One primitive: `a` and `b` (contiguous f32) in, `out_len` values out.
fn run(
    primitive: Primitive,
    g: &ConvGeometry,
    a: (&CudaStorage, &Layout),
    b: (&CudaStorage, &Layout),
    out_len: usize,
) -> Result<Option<CudaStorage>> {
    let op = "ganzoo-convolution (cuDNN)";
    let (av, bv) = (view(a.0, a.1, op)?, view(b.0, b.1, op)?);
    let device = &a.0.device;
    let stream = device.cuda_stream();
    // Allocated only once an algorithm is taken: where cuDNN declines, the columns run.
    with_plan(device, g, primitive, |h, d, algo, workspace| {
        // SAFETY: cuDNN writes all `out_len` values (beta 0).
        let mut out = unsafe { device.alloc::<f32>(out_len)? };
        let mut space = match workspace {
            0 => None,
            // SAFETY: only cuDNN touches the workspace.
            n => Some(unsafe { device.alloc::<u8>(n)? }),
        };
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
        Ok(CudaStorage::wrap_cuda_slice(out, device.clone()))
    })
}

/// `y = W ⋆ x`: `x (N, C, H, W)`, `w (O, C, kh, kw)` → `(N, O, H', W')`.
pub(crate) fn forward(
    g: &ConvGeometry,
    x: (&CudaStorage, &Layout),
    w: (&CudaStorage, &Layout),
) -> Result<Option<CudaStorage>> {
    run(Primitive::Forward, g, x, w, g.batch * g.cout * g.out_plane())
}

/// The adjoint of [`forward`]: `dy (N, O, H', W')`, `w (O, C, kh, kw)` → `(N, C, H, W)`.
pub(crate) fn adjoint(
    g: &ConvGeometry,
    dy: (&CudaStorage, &Layout),
    w: (&CudaStorage, &Layout),
) -> Result<Option<CudaStorage>> {
    run(Primitive::Adjoint, g, dy, w, g.batch * g.cin * g.in_plane())
}

/// `∂⟨W ⋆ x, dy⟩/∂W`: `x (N, C, H, W)`, `dy (N, O, H', W')` → `(O, C, kh, kw)`.
pub(crate) fn weight_grad(
    g: &ConvGeometry,
    x: (&CudaStorage, &Layout),
    dy: (&CudaStorage, &Layout),
) -> Result<Option<CudaStorage>> {
    run(Primitive::WeightGrad, g, x, dy, g.cout * g.patch())
}
