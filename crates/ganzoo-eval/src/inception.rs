//! pytorch-fid's InceptionV3 — the network published FIDs are measured in
//! (`pytorch_fid/inception.py`: `InceptionV3` with `fid_inception_v3()`, itself a port of
//! TensorFlow's `inception-2015-12-05` graph) — with its 2048-d pool features.
//!
//! Differences from torchvision's InceptionV3, all kept: `FIDInceptionA`/`C`/`E_1` average
//! pools exclude the padding from the count; `FIDInceptionE_2` (Mixed_7c) max-pools its
//! pool branch; batch norm ε = 1e-3. Input: bilinear resize to 299×299 with
//! `align_corners = False` and no antialiasing (`F.interpolate`), values in [−1, 1]
//! (pytorch-fid scales [0, 1] by `2x − 1` after resizing; resizing is affine-invariant, so
//! ganzoo's [−1, 1] images are resized as they are), gray images repeated to 3 channels.
//! Output: the global average of Mixed_7c, `(B, 2048)`.
//!
//! Batch norm runs in evaluation mode, folded into each convolution once at load:
//! `W' = W·γ/√(σ² + ε)`, `b' = β − μ·γ/√(σ² + ε)`. Every convolution goes through
//! `ganzoo_models::conv`, with its bias and ReLU. Where ganzoo's kernels run (CPU, f32) the
//! activations are channels-last from the resized input to the pool features, each
//! convolution one op with its bias and ReLU, the pools ganzoo's; elsewhere NCHW with
//! Candle's pools.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use ganzoo_kernels::{ImageLayout, Pool2d, PoolKind};
use ganzoo_models::conv::conv2d_bias_relu;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::{EvalError, Result};

/// Width of the pool features.
pub const FEATURES: usize = 2048;
/// Side the network sees.
pub const SIDE: usize = 299;
const BN_EPS: f64 = 1e-3;

/// Where the network's tensors come from, by their names in pytorch-fid's state dict.
trait Source {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor>;
}

impl Source for &HashMap<String, Tensor> {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = HashMap::get(self, name).ok_or_else(|| EvalError::Weights(format!("the weights lack {name}")))?;
        if t.dims() != shape {
            return Err(EvalError::Weights(format!("{name} has shape {:?}, InceptionV3 needs {shape:?}", t.dims())));
        }
        t.to_dtype(DType::F32).map_err(|e| EvalError::Weights(format!("{name}: {e}")))
    }
}

/// Deterministic random weights (for checking the port against pytorch-fid without its
/// download): He-normal convolutions and batch norms with random scale, shift **and
/// running statistics**, so that a wrongly folded or misplaced statistic shows.
struct Random {
    rng: ChaCha8Rng,
    drawn: HashMap<String, Tensor>,
}

impl Source for Random {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let uniform = |lo: f32, hi: f32, rng: &mut ChaCha8Rng| -> Result<Vec<f32>> {
            let u = Uniform::new(lo, hi).map_err(|e| EvalError::Numeric(e.to_string()))?;
            Ok((0..n).map(|_| u.sample(rng)).collect())
        };
        let values = if name.ends_with("conv.weight") {
            let std = (2.0 / (shape[1..].iter().product::<usize>()) as f32).sqrt();
            (0..n).map(|_| std * Distribution::<f32>::sample(&StandardNormal, &mut self.rng)).collect()
        } else if name.ends_with("bn.weight") || name.ends_with("running_var") {
            uniform(0.5, 1.5, &mut self.rng)?
        } else {
            uniform(-0.2, 0.2, &mut self.rng)?
        };
        let t = Tensor::from_vec(values, shape, &Device::Cpu).map_err(numeric)?;
        self.drawn.insert(name.to_string(), t.clone());
        Ok(t)
    }
}

fn numeric(e: candle_core::Error) -> EvalError {
    EvalError::Numeric(e.to_string())
}

/// Convolution + batch norm (folded) + ReLU: torchvision's `BasicConv2d`.
struct BasicConv {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: (usize, usize),
}

impl BasicConv {
    fn forward(&self, x: &Tensor, layout: ImageLayout) -> candle_core::Result<Tensor> {
        conv2d_bias_relu(x, &self.weight, &self.bias, (self.stride, self.padding), layout)
    }
}

#[derive(Clone, Copy)]
enum Pool {
    /// 3×3, stride 1, padding 1, the padding not counted (`count_include_pad=False`).
    Average,
    /// 3×3, stride 1, padding 1 (Mixed_7c's pool branch).
    Max,
    /// 3×3, stride 2, no padding.
    MaxStride2,
}

impl Pool {
    fn apply(self, x: &Tensor, layout: ImageLayout) -> candle_core::Result<Tensor> {
        if layout == ImageLayout::Nhwc {
            let (kind, stride, padding) = match self {
                Self::Average => (PoolKind::Mean, 1, 1),
                Self::Max => (PoolKind::Max, 1, 1),
                Self::MaxStride2 => (PoolKind::Max, 2, 0),
            };
            return ganzoo_kernels::pool2d(x, Pool2d { kind, kernel: 3, stride, padding });
        }
        match self {
            Self::MaxStride2 => x.max_pool2d_with_stride(3, 2),
            Self::Max => pad_hw(x, f32::NEG_INFINITY)?.max_pool2d_with_stride(3, 1),
            Self::Average => {
                let (_, _, h, w) = x.dims4()?;
                let sum = pad_hw(x, 0.0)?.avg_pool2d_with_stride(3, 1)?;
                sum.broadcast_mul(&window_counts(h, w, x.device())?)
            }
        }
    }
}

/// `x` with one row and column of `value` around each plane.
fn pad_hw(x: &Tensor, value: f32) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let rows = Tensor::full(value, (b, c, 1, w), x.device())?;
    let x = Tensor::cat(&[&rows, x, &rows], 2)?;
    let cols = Tensor::full(value, (b, c, h + 2, 1), x.device())?;
    Tensor::cat(&[&cols, &x, &cols], 3)
}

/// `9 / (pixels of the 3×3 window inside the h×w image)`, `(1, 1, h, w)`: turns the mean
/// over a zero-padded window into the mean over its real pixels.
fn window_counts(h: usize, w: usize, device: &Device) -> candle_core::Result<Tensor> {
    let inside = |i: usize, n: usize| (i.saturating_sub(1)..=(i + 1).min(n - 1)).count();
    let values: Vec<f32> =
        (0..h).flat_map(|i| (0..w).map(move |j| 9.0 / (inside(i, h) * inside(j, w)) as f32)).collect();
    Tensor::from_vec(values, (1, 1, h, w), device)
}

/// One branch of a mixed block: an optional pool, convolutions in sequence, then
/// optionally two convolutions side by side (InceptionE's 1×3 and 3×1) concatenated.
struct Branch {
    pool: Option<Pool>,
    convs: Vec<BasicConv>,
    split: Vec<BasicConv>,
}

impl Branch {
    fn forward(&self, x: &Tensor, layout: ImageLayout) -> candle_core::Result<Tensor> {
        let mut y = match self.pool {
            Some(p) => p.apply(x, layout)?,
            None => x.clone(),
        };
        for c in &self.convs {
            y = c.forward(&y, layout)?;
        }
        if self.split.is_empty() {
            return Ok(y);
        }
        let parts = self.split.iter().map(|c| c.forward(&y, layout));
        Tensor::cat(&parts.collect::<candle_core::Result<Vec<_>>>()?, layout.channel_axis())
    }
}

enum Stage {
    Conv(BasicConv),
    Pool(Pool),
    /// Branches concatenated along channels.
    Mixed(Vec<Branch>),
}

/// Reads the tensors of one block (prefix `prefix`) from a [`Source`], folding batch norms.
struct Builder<'a> {
    source: &'a mut dyn Source,
    device: Device,
}

/// `(kh, kw)` or `(ph, pw)`.
type Pair = (usize, usize);

const fn sq(k: usize) -> Pair {
    (k, k)
}

impl Builder<'_> {
    fn conv(
        &mut self,
        name: &str,
        cin: usize,
        cout: usize,
        kernel: Pair,
        stride: usize,
        padding: Pair,
    ) -> Result<BasicConv> {
        let mut get = |part: &str, shape: &[usize]| self.source.get(&format!("{name}.{part}"), shape);
        let w = get("conv.weight", &[cout, cin, kernel.0, kernel.1])?;
        let gamma = get("bn.weight", &[cout])?;
        let beta = get("bn.bias", &[cout])?;
        let mean = get("bn.running_mean", &[cout])?;
        let var = get("bn.running_var", &[cout])?;
        let fold = || -> candle_core::Result<(Tensor, Tensor)> {
            let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
            let weight = w.broadcast_mul(&scale.reshape((cout, 1, 1, 1))?)?;
            let bias = (beta - (mean * &scale)?)?;
            Ok((weight.to_device(&self.device)?, bias.to_device(&self.device)?))
        };
        let (weight, bias) = fold().map_err(numeric)?;
        Ok(BasicConv { weight, bias, stride, padding })
    }

    fn c1(&mut self, name: &str, cin: usize, cout: usize) -> Result<BasicConv> {
        self.conv(name, cin, cout, sq(1), 1, sq(0))
    }

    /// `FIDInceptionA` (Mixed_5b–5d).
    fn block_a(&mut self, p: &str, cin: usize, pool_features: usize) -> Result<Vec<Branch>> {
        Ok(vec![
            branch(None, vec![self.c1(&format!("{p}.branch1x1"), cin, 64)?], vec![]),
            branch(
                None,
                vec![
                    self.c1(&format!("{p}.branch5x5_1"), cin, 48)?,
                    self.conv(&format!("{p}.branch5x5_2"), 48, 64, sq(5), 1, sq(2))?,
                ],
                vec![],
            ),
            branch(None, self.double_3x3(p, cin, 1)?, vec![]),
            branch(Some(Pool::Average), vec![self.c1(&format!("{p}.branch_pool"), cin, pool_features)?], vec![]),
        ])
    }

    /// 1×1 → 3×3 → 3×3, the last with `stride` (padding 1 at stride 1, none at 2).
    fn double_3x3(&mut self, p: &str, cin: usize, stride: usize) -> Result<Vec<BasicConv>> {
        Ok(vec![
            self.c1(&format!("{p}.branch3x3dbl_1"), cin, 64)?,
            self.conv(&format!("{p}.branch3x3dbl_2"), 64, 96, sq(3), 1, sq(1))?,
            self.conv(&format!("{p}.branch3x3dbl_3"), 96, 96, sq(3), stride, sq(2 - stride))?,
        ])
    }

    /// torchvision's `InceptionB` (Mixed_6a): 35×35 → 17×17.
    fn block_b(&mut self, p: &str, cin: usize) -> Result<Vec<Branch>> {
        Ok(vec![
            branch(None, vec![self.conv(&format!("{p}.branch3x3"), cin, 384, sq(3), 2, sq(0))?], vec![]),
            branch(None, self.double_3x3(p, cin, 2)?, vec![]),
            branch(Some(Pool::MaxStride2), vec![], vec![]),
        ])
    }

    /// `FIDInceptionC` (Mixed_6b–6e): factorised 7×7 convolutions of width `c7`.
    fn block_c(&mut self, p: &str, cin: usize, c7: usize) -> Result<Vec<Branch>> {
        let (row, col) = (((1, 7), (0, 3)), ((7, 1), (3, 0)));
        let chain = |b: &mut Self, name: &str, shapes: &[(Pair, Pair)]| -> Result<Vec<BasicConv>> {
            let mut convs = vec![b.c1(&format!("{p}.{name}_1"), cin, c7)?];
            for (i, &(k, pad)) in shapes.iter().enumerate() {
                let cout = if i + 1 == shapes.len() { 192 } else { c7 };
                convs.push(b.conv(&format!("{p}.{name}_{}", i + 2), c7, cout, k, 1, pad)?);
            }
            Ok(convs)
        };
        Ok(vec![
            branch(None, vec![self.c1(&format!("{p}.branch1x1"), cin, 192)?], vec![]),
            branch(None, chain(self, "branch7x7", &[row, col])?, vec![]),
            branch(None, chain(self, "branch7x7dbl", &[col, row, col, row])?, vec![]),
            branch(Some(Pool::Average), vec![self.c1(&format!("{p}.branch_pool"), cin, 192)?], vec![]),
        ])
    }

    /// torchvision's `InceptionD` (Mixed_7a): 17×17 → 8×8.
    fn block_d(&mut self, p: &str, cin: usize) -> Result<Vec<Branch>> {
        Ok(vec![
            branch(
                None,
                vec![
                    self.c1(&format!("{p}.branch3x3_1"), cin, 192)?,
                    self.conv(&format!("{p}.branch3x3_2"), 192, 320, sq(3), 2, sq(0))?,
                ],
                vec![],
            ),
            branch(
                None,
                vec![
                    self.c1(&format!("{p}.branch7x7x3_1"), cin, 192)?,
                    self.conv(&format!("{p}.branch7x7x3_2"), 192, 192, (1, 7), 1, (0, 3))?,
                    self.conv(&format!("{p}.branch7x7x3_3"), 192, 192, (7, 1), 1, (3, 0))?,
                    self.conv(&format!("{p}.branch7x7x3_4"), 192, 192, sq(3), 2, sq(0))?,
                ],
                vec![],
            ),
            branch(Some(Pool::MaxStride2), vec![], vec![]),
        ])
    }

    /// `FIDInceptionE_1` (Mixed_7b, average pool) and `FIDInceptionE_2` (Mixed_7c, max pool).
    fn block_e(&mut self, p: &str, cin: usize, pool: Pool) -> Result<Vec<Branch>> {
        let split = |b: &mut Self, name: &str| -> Result<Vec<BasicConv>> {
            Ok(vec![
                b.conv(&format!("{p}.{name}a"), 384, 384, (1, 3), 1, (0, 1))?,
                b.conv(&format!("{p}.{name}b"), 384, 384, (3, 1), 1, (1, 0))?,
            ])
        };
        let one = vec![self.c1(&format!("{p}.branch1x1"), cin, 320)?];
        let three = vec![self.c1(&format!("{p}.branch3x3_1"), cin, 384)?];
        let three_split = split(self, "branch3x3_2")?;
        let dbl = vec![
            self.c1(&format!("{p}.branch3x3dbl_1"), cin, 448)?,
            self.conv(&format!("{p}.branch3x3dbl_2"), 448, 384, sq(3), 1, sq(1))?,
        ];
        let dbl_split = split(self, "branch3x3dbl_3")?;
        Ok(vec![
            branch(None, one, vec![]),
            branch(None, three, three_split),
            branch(None, dbl, dbl_split),
            branch(Some(pool), vec![self.c1(&format!("{p}.branch_pool"), cin, 192)?], vec![]),
        ])
    }
}

fn branch(pool: Option<Pool>, convs: Vec<BasicConv>, split: Vec<BasicConv>) -> Branch {
    Branch { pool, convs, split }
}

/// pytorch-fid's InceptionV3 up to its pool features.
pub struct Inception {
    stages: Vec<Stage>,
    device: Device,
}

impl Inception {
    /// The network on the tensors of a pytorch-fid state dict (`Conv2d_1a_3x3.conv.weight`,
    /// …; other entries such as `fc.*` are ignored). A missing or misshapen tensor is an error.
    pub fn from_state_dict(tensors: &HashMap<String, Tensor>, device: &Device) -> Result<Self> {
        let mut source = tensors;
        Self::build(&mut source, device)
    }

    /// The network on deterministic random weights drawn from `seed`, and those weights as a
    /// state dict keyed as pytorch-fid's.
    pub fn random(seed: u64, device: &Device) -> Result<(Self, HashMap<String, Tensor>)> {
        let mut source = Random { rng: ChaCha8Rng::seed_from_u64(seed), drawn: HashMap::new() };
        let net = Self::build(&mut source, device)?;
        Ok((net, source.drawn))
    }

    fn build(source: &mut dyn Source, device: &Device) -> Result<Self> {
        let mut b = Builder { source, device: device.clone() };
        let stages = vec![
            Stage::Conv(b.conv("Conv2d_1a_3x3", 3, 32, sq(3), 2, sq(0))?),
            Stage::Conv(b.conv("Conv2d_2a_3x3", 32, 32, sq(3), 1, sq(0))?),
            Stage::Conv(b.conv("Conv2d_2b_3x3", 32, 64, sq(3), 1, sq(1))?),
            Stage::Pool(Pool::MaxStride2),
            Stage::Conv(b.conv("Conv2d_3b_1x1", 64, 80, sq(1), 1, sq(0))?),
            Stage::Conv(b.conv("Conv2d_4a_3x3", 80, 192, sq(3), 1, sq(0))?),
            Stage::Pool(Pool::MaxStride2),
            Stage::Mixed(b.block_a("Mixed_5b", 192, 32)?),
            Stage::Mixed(b.block_a("Mixed_5c", 256, 64)?),
            Stage::Mixed(b.block_a("Mixed_5d", 288, 64)?),
            Stage::Mixed(b.block_b("Mixed_6a", 288)?),
            Stage::Mixed(b.block_c("Mixed_6b", 768, 128)?),
            Stage::Mixed(b.block_c("Mixed_6c", 768, 160)?),
            Stage::Mixed(b.block_c("Mixed_6d", 768, 160)?),
            Stage::Mixed(b.block_c("Mixed_6e", 768, 192)?),
            Stage::Mixed(b.block_d("Mixed_7a", 768)?),
            Stage::Mixed(b.block_e("Mixed_7b", 1280, Pool::Average)?),
            Stage::Mixed(b.block_e("Mixed_7c", 2048, Pool::Max)?),
        ];
        Ok(Self { stages, device: device.clone() })
    }

    /// The folded weights and biases, in network order.
    pub fn parameters(&self) -> Vec<Tensor> {
        let convs = self.stages.iter().flat_map(|s| match s {
            Stage::Conv(c) => vec![c],
            Stage::Pool(_) => vec![],
            Stage::Mixed(branches) => branches.iter().flat_map(|b| b.convs.iter().chain(&b.split)).collect(),
        });
        convs.flat_map(|c| [c.weight.clone(), c.bias.clone()]).collect()
    }

    /// Pool features `(B, 2048)` of images `(B, C, H, W)` on any device, C = 1 or 3, values
    /// in [−1, 1] (checked: out of range or non-finite values are errors), computed on the
    /// network's device: channels-last where ganzoo's kernels take the input (CPU, f32),
    /// else NCHW.
    pub fn features(&self, images: &Tensor) -> Result<Tensor> {
        let x = resize_for_inception(images)?.to_device(&self.device).map_err(numeric)?;
        let layout = if ganzoo_models::backend::kernels_run(&x, &[], ImageLayout::Nchw) {
            ImageLayout::Nhwc
        } else {
            ImageLayout::Nchw
        };
        let run = || -> candle_core::Result<Tensor> {
            let mut x = if layout == ImageLayout::Nhwc { ganzoo_kernels::to_nhwc(&x)? } else { x };
            for stage in &self.stages {
                x = match stage {
                    Stage::Conv(c) => c.forward(&x, layout)?,
                    Stage::Pool(p) => p.apply(&x, layout)?,
                    Stage::Mixed(branches) => {
                        let parts = branches.iter().map(|b| b.forward(&x, layout));
                        Tensor::cat(&parts.collect::<candle_core::Result<Vec<_>>>()?, layout.channel_axis())?
                    }
                };
            }
            let h = layout.height_axis();
            x.mean((h, h + 1))
        };
        run().map_err(numeric)
    }
}

/// Images `(B, C, H, W)` in [−1, 1] as the network's `(B, 3, 299, 299)` f32 input: gray
/// repeated to three channels, then PyTorch's bilinear interpolation
/// (`align_corners=False`, no antialiasing) — source coordinate `(o + ½)·in/out − ½`,
/// clamped at 0, between the two nearest pixels.
pub fn resize_for_inception(images: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4().map_err(|e| EvalError::Samples(format!("images must be (B, C, H, W): {e}")))?;
    if c != 1 && c != 3 {
        return Err(EvalError::Samples(format!("InceptionV3 takes 1 or 3 channels, the images have {c}")));
    }
    let data: Vec<f32> =
        images.to_dtype(DType::F32).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).map_err(numeric)?;
    crate::error::check_finite(&data, "the images")?;
    if let Some(i) = data.iter().position(|v| v.abs() > 1.0 + 1e-3) {
        return Err(EvalError::Samples(format!("image values must lie in [-1, 1]; value {} at index {i}", data[i])));
    }
    let (rows, cols) = (taps(h, SIDE), taps(w, SIDE));
    let mut out = Vec::with_capacity(b * 3 * SIDE * SIDE);
    for plane in data.chunks_exact(h * w) {
        let mut resized = Vec::with_capacity(SIDE * SIDE);
        for &(y0, y1, ly) in &rows {
            for &(x0, x1, lx) in &cols {
                let at = |y: usize, x: usize| plane[y * w + x];
                let top = (1.0 - lx) * at(y0, x0) + lx * at(y0, x1);
                let bottom = (1.0 - lx) * at(y1, x0) + lx * at(y1, x1);
                resized.push((1.0 - ly) * top + ly * bottom);
            }
        }
        let copies = if c == 1 { 3 } else { 1 };
        for _ in 0..copies {
            out.extend_from_slice(&resized);
        }
    }
    Tensor::from_vec(out, (b, 3, SIDE, SIDE), &Device::Cpu).map_err(numeric)
}

/// For each output index: the two source indices and the weight of the second.
fn taps(n_in: usize, n_out: usize) -> Vec<(usize, usize, f32)> {
    let scale = n_in as f32 / n_out as f32;
    (0..n_out)
        .map(|o| {
            let src = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src as usize).min(n_in - 1);
            (i0, (i0 + 1).min(n_in - 1), src - i0 as f32)
        })
        .collect()
}
