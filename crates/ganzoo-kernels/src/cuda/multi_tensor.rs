//! One launch for all of an optimiser's tensors (`gz_multi_step`, `gz_multi_clamp`): the
//! kernel reaches each tensor through a table of device addresses, copied over with the
//! launch, instead of being launched once per tensor and operand.

use candle_core::cuda_backend::cudarc::driver::DevicePtr;
use candle_core::cuda_backend::CudaDevice;
use candle_core::{bail, Result, Storage, Tensor};

use super::{elementwise, int, launch};
use crate::optim::{StepRule, StepSlot};

/// Whether every tensor is f32 on one CUDA device: what the multi-tensor kernels take.
pub(crate) fn takes<'a>(mut tensors: impl Iterator<Item = &'a Tensor>) -> bool {
    let Some(first) = tensors.next() else { return false };
    super::supports(first) && tensors.all(|t| super::supports(t) && t.device().same_device(first.device()))
}

/// The device address of `t`'s first value and its length: an f32 contiguous CUDA tensor,
/// for a kernel that reaches it by address (written there while only borrowed here:
/// device memory the host never reads, every use of it ordered on the device's one stream).
pub(crate) fn address(t: &Tensor, op: &'static str) -> Result<(u64, usize)> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cuda(s) = &*storage else { bail!("{op}: a tensor is not on CUDA") };
    let Some((start, end)) = layout.contiguous_offsets() else {
        return Err(candle_core::Error::RequiresContiguous { op });
    };
    let stream = s.device.cuda_stream();
    let (base, _record) = s.as_cuda_slice::<f32>()?.device_ptr(&stream);
    Ok((base + (start * std::mem::size_of::<f32>()) as u64, end - start))
}

/// The address table of `rows` (each row one tensor per role, all of one shape): the
/// rows' addresses, then each row's first index in the concatenation and the total.
/// Also the device, the row count and the total.
struct Table {
    addresses: Vec<u64>,
    device: CudaDevice,
    count: i32,
    total: usize,
}

impl Table {
    fn of(rows: &[Vec<&Tensor>], op: &'static str) -> Result<Self> {
        let Some(first) = rows.first().and_then(|r| r.first()) else { bail!("{op}: no tensors") };
        let device = first.device().as_cuda_device()?.clone();
        let mut addresses = Vec::with_capacity(rows.len() * (rows[0].len() + 1) + 1);
        let mut offsets = vec![0u64];
        for row in rows {
            let dims = row[0].dims();
            for t in row {
                if t.dims() != dims {
                    bail!("{op}: shapes {:?} and {:?} differ", dims, t.dims());
                }
                addresses.push(address(t, op)?.0);
            }
            offsets.push(offsets[offsets.len() - 1] + row[0].elem_count() as u64);
        }
        let total = offsets[offsets.len() - 1] as usize;
        addresses.extend(offsets);
        Ok(Self { addresses, device, count: int(rows.len(), "tensor count")?, total })
    }
}

/// [`crate::optimiser_steps`] on CUDA: `gz_multi_step` over every slot.
pub(crate) fn optimiser_steps(slots: &[StepSlot<'_>], rule: StepRule) -> Result<()> {
    let op = "ganzoo-optimiser-steps (cuda)";
    let grads = slots.iter().map(|s| s.grad.contiguous()).collect::<Result<Vec<_>>>()?;
    let (adam, [lr, beta1, beta2, a_scale, b_scale, eps], eps_in_root) = match rule {
        StepRule::Adam { t, lr, betas, eps } => {
            let (a_scale, b_scale) = crate::optim::bias_corrections(t, betas);
            (1, [lr, betas.0, betas.1, a_scale, b_scale, eps], 0)
        }
        StepRule::RmsProp { lr, alpha, eps, eps_in_root } => (0, [lr, 0.0, alpha, 1.0, 1.0, eps], eps_in_root as i32),
    };
    let mut rows = Vec::with_capacity(slots.len());
    for (s, g) in slots.iter().zip(&grads) {
        let m = match (adam, s.m) {
            (1, None) => bail!("{op}: Adam without first moments"),
            (_, m) => m.unwrap_or(s.v),
        };
        rows.push(vec![s.theta, g, m, s.v]);
    }
    let table = Table::of(&rows, op)?;
    if table.total == 0 {
        return Ok(());
    }
    let addresses = table.device.clone_htod(&table.addresses)?;
    let Table { device, count, total, .. } = table;
    launch::gz_multi_step(
        &device,
        elementwise(total),
        &addresses,
        &count,
        &total,
        &lr,
        &beta1,
        &beta2,
        &a_scale,
        &b_scale,
        &eps,
        &eps_in_root,
        &adam,
    )
}

/// [`crate::clamp_all`] on CUDA: `gz_multi_clamp` over every tensor.
pub(crate) fn clamp_all(vs: &[&Tensor], (lo, hi): (f32, f32)) -> Result<()> {
    let rows: Vec<Vec<&Tensor>> = vs.iter().map(|v| vec![*v]).collect();
    let table = Table::of(&rows, "ganzoo-clamp-all (cuda)")?;
    if table.total == 0 {
        return Ok(());
    }
    let addresses = table.device.clone_htod(&table.addresses)?;
    launch::gz_multi_clamp(&table.device, elementwise(table.total), &addresses, &table.count, &table.total, &lo, &hi)
}
