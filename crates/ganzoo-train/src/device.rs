//! CUDA devices as training wants them. Candle allocates through cudarc with
//! `cuMemAllocAsync` from the device's default memory pool, which by default hands
//! freed memory back to the driver at every synchronisation, so each iteration maps its
//! tensors again; [`cuda`] makes the pool keep it for the next allocation, as PyTorch's
//! caching allocator does. [`peak_memory_in_use`] reads the pool's high-water mark of
//! memory held by live tensors (the analogue of `torch.cuda.max_memory_allocated`),
//! [`name`] the GPU's name.
//! cudarc creates two CUDA events with every allocation and destroys them with it, to
//! order work between streams; Candle's device runs one stream (CUDA's per-thread one),
//! on which cudarc never records them, so [`cuda`] turns that off (`GANZOO_CUDA_EVENTS=1`
//! keeps it, to measure what it costs).
//! [`DeviceSpec`] is a device as the command line names it.
//! Without the `cuda` feature both only report that CUDA is missing.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

/// Where tensors live: the CPU or CUDA GPU `n` (as CUDA numbers the visible GPUs), spelt
/// as PyTorch does: `cpu`, `cuda` (GPU 0), `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    pub fn is_cuda(self) -> bool {
        matches!(self, Self::Cuda(_))
    }

    /// The device, [`cuda`] for a GPU.
    pub fn open(self) -> candle_core::Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) => cuda(n),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("`{s}`: expected cpu, cuda or cuda:N (N the GPU's number, from 0)")),
        }
    }
}

/// `cpu`, `cuda` (GPU 0), `cuda:N`: what [`FromStr`] reads back.
impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(0) => f.write_str("cuda"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// CUDA GPU `ordinal` with its memory pool keeping freed memory (a warning, not an
/// error, where the driver refuses or has no pools: training still works, only slower).
pub fn cuda(ordinal: usize) -> candle_core::Result<Device> {
    pool::check_ordinal(ordinal)?;
    let device = Device::new_cuda(ordinal)?;
    if std::env::var_os("GANZOO_CUDA_EVENTS").is_none_or(|v| v != "1") {
        pool::one_stream(&device);
    }
    if !pool::pooled(&device) {
        // cudarc then allocates with cuMemAlloc and frees with cuMemFree after waiting for the GPU.
        tracing::warn!("CUDA GPU {ordinal} has no memory pools: every freed tensor waits for the GPU (slow)");
    } else if let Err(e) = pool::keep_freed_memory(&device) {
        tracing::warn!("CUDA memory pool left releasing freed memory: {e}");
    }
    Ok(device)
}

/// Bytes the device's pool held for live tensors at most since the process started,
/// plus CUDA graphs' memory at most (`None` on the CPU or where the driver does not say).
/// The two high-water marks may have been reached at different times, so with graphs
/// this can overstate the true peak, never understate it.
pub fn peak_memory_in_use(device: &Device) -> Option<u64> {
    match device {
        Device::Cuda(_) => pool::used_high(device).ok(),
        _ => None,
    }
}

/// The GPU's name as the driver gives it (`None` on the CPU or where it does not).
pub fn name(device: &Device) -> Option<String> {
    match device {
        Device::Cuda(_) => pool::name(device).ok(),
        _ => None,
    }
}

#[cfg(feature = "cuda")]
mod pool {
    use std::ffi::c_void;

    use candle_core::cuda_backend::cudarc::driver::sys;
    use candle_core::Device;

    /// The device's default pool (the one cudarc's `cuMemAllocAsync` draws from).
    fn default_pool(device: &Device) -> Result<sys::CUmemoryPool, String> {
        let stream = device.as_cuda_device().map_err(|e| e.to_string())?.cuda_stream();
        let context = stream.context();
        context.bind_to_thread().map_err(|e| e.to_string())?;
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        // SAFETY: `pool` is a valid out-pointer and the device handle comes from a live context.
        unsafe { sys::cuDeviceGetDefaultMemPool(&mut pool, context.cu_device()) }
            .result()
            .map_err(|e| format!("cuDeviceGetDefaultMemPool: {e:?}"))?;
        Ok(pool)
    }

    /// An error naming how many GPUs are visible where `ordinal` is not one of them
    /// (the driver's own error only says the device is invalid).
    pub fn check_ordinal(ordinal: usize) -> candle_core::Result<()> {
        use candle_core::cuda_backend::cudarc::driver::CudaContext;
        match CudaContext::device_count() {
            Ok(count) if ordinal >= count.max(0) as usize => {
                Err(candle_core::Error::Msg(format!("CUDA GPU {ordinal} asked for, {count} visible, numbered from 0")))
            }
            // A driver that cannot count fails again, with its own error, in Candle's call.
            _ => Ok(()),
        }
    }

    pub fn name(device: &Device) -> Result<String, String> {
        let stream = device.as_cuda_device().map_err(|e| e.to_string())?.cuda_stream();
        stream.context().name().map_err(|e| format!("{e:?}"))
    }

    /// Tensors allocated from now on carry no CUDA events.
    pub fn one_stream(device: &Device) {
        if let Ok(cuda) = device.as_cuda_device() {
            // SAFETY: the events order work between streams; ganzoo issues all its CUDA
            // work on the device's one stream from one thread, and cudarc reads the events
            // only in multi-stream mode, which nothing here enters (no `new_stream`).
            unsafe { cuda.disable_event_tracking() }
        }
    }

    /// Whether cudarc allocates from the device's memory pool (`cuMemAllocAsync`), which
    /// it does where the driver reports pools supported.
    pub fn pooled(device: &Device) -> bool {
        device.as_cuda_device().is_ok_and(|d| d.cuda_stream().context().has_async_alloc())
    }

    pub fn keep_freed_memory(device: &Device) -> Result<(), String> {
        let pool = default_pool(device)?;
        let mut threshold = u64::MAX;
        let attribute = sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD;
        // SAFETY: the release threshold is a cuuint64_t, which `threshold` is.
        unsafe { sys::cuMemPoolSetAttribute(pool, attribute, (&raw mut threshold).cast::<c_void>()) }
            .result()
            .map_err(|e| format!("cuMemPoolSetAttribute: {e:?}"))
    }

    pub fn used_high(device: &Device) -> Result<u64, String> {
        let pool = default_pool(device)?;
        let mut bytes = 0u64;
        let attribute = sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH;
        // SAFETY: the high-water mark is a cuuint64_t, which `bytes` is.
        unsafe { sys::cuMemPoolGetAttribute(pool, attribute, (&raw mut bytes).cast::<c_void>()) }
            .result()
            .map_err(|e| format!("cuMemPoolGetAttribute: {e:?}"))?;
        // Without graphs asked for, a driver that cannot say costs nothing.
        match graph_used_high(device) {
            Ok(graphs) => Ok(bytes + graphs),
            Err(_) if !crate::replay::requested() => Ok(bytes),
            Err(e) => Err(e),
        }
    }

    /// The high-water mark of CUDA graphs' own memory (what recorded steps allocate,
    /// `GANZOO_CUDA_GRAPHS`), which the default pool does not count; 0 without graphs.
    fn graph_used_high(device: &Device) -> Result<u64, String> {
        let stream = device.as_cuda_device().map_err(|e| e.to_string())?.cuda_stream();
        let context = stream.context();
        let mut bytes = 0u64;
        let attribute = sys::CUgraphMem_attribute::CU_GRAPH_MEM_ATTR_USED_MEM_HIGH;
        // SAFETY: the high-water mark is a cuuint64_t, which `bytes` is; the device
        // handle comes from a live context.
        unsafe { sys::cuDeviceGetGraphMemAttribute(context.cu_device(), attribute, (&raw mut bytes).cast::<c_void>()) }
            .result()
            .map_err(|e| format!("cuDeviceGetGraphMemAttribute: {e:?}"))?;
        Ok(bytes)
    }
}

#[cfg(not(feature = "cuda"))]
mod pool {
    use candle_core::Device;

    const MISSING: &str = "this build has no CUDA";

    pub fn one_stream(_: &Device) {}

    pub fn check_ordinal(_: usize) -> candle_core::Result<()> {
        Ok(())
    }

    pub fn pooled(_: &Device) -> bool {
        false
    }

    pub fn keep_freed_memory(_: &Device) -> Result<(), String> {
        Err(MISSING.into())
    }

    pub fn name(_: &Device) -> Result<String, String> {
        Err(MISSING.into())
    }

    pub fn used_high(_: &Device) -> Result<u64, String> {
        Err(MISSING.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_spelt_as_pytorch_spells_them() {
        for (text, spec) in [("cpu", DeviceSpec::Cpu), ("cuda", DeviceSpec::Cuda(0)), ("cuda:3", DeviceSpec::Cuda(3))] {
            assert_eq!(text.parse::<DeviceSpec>(), Ok(spec));
            assert_eq!(spec.to_string().parse::<DeviceSpec>(), Ok(spec), "{spec}");
        }
        assert_eq!(DeviceSpec::Cuda(0).to_string(), "cuda");
        assert_eq!("cuda:0".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(0)));
        for bad in ["", "gpu", "CUDA", "cuda:", "cuda:-1", "cuda:+1", "cuda:1:2", "cpu:0", "cuda:99999999999999999999"]
        {
            let e = bad.parse::<DeviceSpec>().unwrap_err();
            assert!(e.contains("expected cpu, cuda or cuda:N"), "{bad}: {e}");
        }
        assert!(!DeviceSpec::Cpu.is_cuda() && DeviceSpec::Cuda(1).is_cuda());
        assert!(matches!(DeviceSpec::Cpu.open(), Ok(Device::Cpu)));
    }

    #[test]
    fn the_cpu_has_no_pool_and_a_build_without_cuda_refuses_a_gpu() {
        assert_eq!((peak_memory_in_use(&Device::Cpu), name(&Device::Cpu)), (None, None));
        if !cfg!(feature = "cuda") {
            assert!(cuda(0).is_err());
        }
    }
}
