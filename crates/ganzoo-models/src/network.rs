//! A network as a named sequence of layers — the form every model here takes.
//!
//! Besides the forward pass, a [`Network`] gives `∇ₓ Σ_b f(x)_b`, the gradient of
//! its output with respect to its input, written layer by layer (reverse order)
//! with tracked Candle ops. That gradient is an ordinary differentiable tensor:
//! the WGAN-GP penalty built on it has exact gradients with respect to every
//! weight, whatever Candle's `CANDLE_GRAD_DO_NOT_DETACH` setting.
//!
//! Where ganzoo's kernels take the input, a network keeps its images channels-last
//! (NHWC) from the first convolution or normalisation to the last, so no layer
//! transposes into and out of the layout the kernels unfold; a reshape, and the
//! network's output, see NCHW again ([`ImageLayout`]). Inputs and outputs are NCHW
//! whatever runs inside.
//!
//! Mixed precision ([`Network::with_activations`]): activations in bf16 (or any other
//! dtype), weights kept in theirs (f32 master copies) and cast at each use by a tracked
//! `to_dtype`, so their gradients arrive in the weights' dtype; normalisations compute in
//! the weights' dtype (as PyTorch's autocast runs batch norm in f32); the output, and the
//! input gradient, come back in the input's dtype.

use candle_core::{DType, Module, Tensor};
use ganzoo_kernels::ImageLayout;

use crate::conv::{Conv2d, ConvTranspose2d};
use crate::linear::Linear;
use crate::norm::{BatchNorm2d, BnMode, LayerNorm};
use crate::{ModelError, Result};

/// Elementwise non-linearities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Relu,
    /// `max(x, αx)`; DCGAN and the seed's MLP use α = 0.2.
    LeakyRelu(f64),
    Tanh,
}

impl Activation {
    /// The negative-side slope of the piecewise-linear activations (ReLU: 0), which
    /// ganzoo's leaky-ReLU kernel runs when the tensor suits it.
    fn kernel_slope(self, x: &Tensor) -> Option<f64> {
        self.slope().filter(|_| crate::backend::cuda_kernels_run(x, &[], ImageLayout::Nchw))
    }

    /// The negative-side slope of the piecewise-linear activations (ReLU: 0).
    fn slope(self) -> Option<f64> {
        match self {
            Self::Relu => Some(0.0),
            Self::LeakyRelu(a) => Some(a),
            Self::Tanh => None,
        }
    }

    /// The activation of `x`, as the networks run it (ganzoo's kernel where it takes `x`).
    pub fn forward(self, x: &Tensor) -> candle_core::Result<Tensor> {
        if let Some(a) = self.kernel_slope(x) {
            return ganzoo_kernels::leaky_relu(x, a);
        }
        match self {
            Self::Relu => x.relu(),
            Self::LeakyRelu(a) => x.maximum(&(x * a)?),
            Self::Tanh if crate::backend::kernels_run(x, &[], ImageLayout::Nchw) => ganzoo_kernels::tanh(x),
            Self::Tanh => x.tanh(),
        }
    }

    /// `∂(Σ y·dy)/∂x`; the piecewise-linear masks are constants (their derivative is 0 almost everywhere).
    pub fn input_grad(self, dy: &Tensor, x: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
        if let Some(a) = self.kernel_slope(x) {
            return ganzoo_kernels::leaky_relu_grad(x, dy, a);
        }
        let mask = || x.detach().gt(0.0)?.to_dtype(x.dtype());
        match self {
            Self::Relu => dy * mask()?,
            Self::LeakyRelu(a) => dy * ((mask()? * (1.0 - a))? + a)?,
            Self::Tanh if crate::backend::kernels_run(y, &[], ImageLayout::Nchw) => ganzoo_kernels::tanh_grad(y, dy),
            Self::Tanh => dy * (1.0 - y.sqr()?)?,
        }
    }
}

/// One layer of a [`Network`].
#[derive(Debug, Clone)]
pub enum Layer {
    Linear(Linear),
    Conv(Conv2d),
    ConvTranspose(ConvTranspose2d),
    BatchNorm(BatchNorm2d),
    LayerNorm(LayerNorm),
    Act(Activation),
    /// Reshape each sample to this shape (`(B, …) → (B, shape…)`).
    Reshape(Vec<usize>),
}

impl Layer {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Linear(_) => "Linear",
            Self::Conv(_) => "Conv2d",
            Self::ConvTranspose(_) => "ConvTranspose2d",
            Self::BatchNorm(_) => "BatchNorm2d",
            Self::LayerNorm(_) => "LayerNorm",
            Self::Act(Activation::Relu) => "ReLU",
            Self::Act(Activation::LeakyRelu(_)) => "LeakyReLU",
            Self::Act(Activation::Tanh) => "Tanh",
            Self::Reshape(_) => "Reshape",
        }
    }

    /// The layer on `x`, an image in `layout` (if an image).
    fn forward_in(&self, x: &Tensor, mode: BnMode, layout: ImageLayout) -> candle_core::Result<Tensor> {
        match self {
            Self::Linear(l) => l.forward(x),
            Self::Conv(c) => c.forward_in(x, layout),
            Self::ConvTranspose(c) => c.forward_in(x, layout),
            Self::BatchNorm(bn) => bn.forward_in(x, mode, layout),
            Self::LayerNorm(ln) => ln.forward_in(x, layout),
            Self::Act(a) => a.forward(x),
            Self::Reshape(shape) => {
                let mut dims = vec![x.dim(0)?];
                dims.extend(shape);
                x.reshape(dims)
            }
        }
    }

    /// The layout this layer takes an image in, given the network's working layout
    /// and the layout `current` of the image it gets: a reshape reads NCHW order,
    /// an activation or a linear layer any order.
    fn layout(&self, working: ImageLayout, current: ImageLayout) -> ImageLayout {
        match self {
            Self::Conv(_) | Self::ConvTranspose(_) | Self::BatchNorm(_) | Self::LayerNorm(_) => working,
            Self::Reshape(_) => ImageLayout::Nchw,
            Self::Linear(_) | Self::Act(_) => current,
        }
    }
}

/// `layer` (batch norm, or a convolution) and `next` (a piecewise-linear activation) on
/// `x` as one kernel op, or `None` where they are not such a pair or the kernel does not run.
fn then_activation(
    layer: &Layer,
    next: Option<&Layer>,
    x: &Tensor,
    mode: BnMode,
    layout: ImageLayout,
) -> Option<candle_core::Result<Tensor>> {
    let Some(Layer::Act(act)) = next else { return None };
    match layer {
        Layer::BatchNorm(bn) => bn.forward_leaky_relu(x, mode, act.slope()?, layout),
        Layer::Conv(conv) => conv.forward_leaky_relu(x, act.slope()?, layout),
        _ => None,
    }
}

/// The layout a network keeps its images in on input `x`: NHWC where ganzoo's
/// kernels take it, else NCHW.
fn working_layout(x: &Tensor) -> ImageLayout {
    if crate::backend::kernels_run(x, &[], ImageLayout::Nchw) {
        ImageLayout::Nhwc
    } else {
        ImageLayout::Nchw
    }
}

/// `x` (an image in layout `from`, or any tensor that is not 4-D) in layout `to`:
/// a reshape where one side of the transpose is 1 (one channel, or a 1×1 image),
/// else one of the kernels' differentiable transposes.
fn relayout(x: &Tensor, from: ImageLayout, to: ImageLayout) -> candle_core::Result<Tensor> {
    if from == to || x.rank() != 4 {
        return Ok(x.clone());
    }
    let nchw = from.to_nchw(x.dims4()?.into());
    let [_, c, h, w] = nchw;
    if c == 1 || h * w == 1 {
        return x.reshape(to.from_nchw(nchw).to_vec());
    }
    match to {
        ImageLayout::Nhwc => ganzoo_kernels::to_nhwc(x),
        ImageLayout::Nchw => ganzoo_kernels::to_nchw(x),
    }
}

/// One layer's run in a traced forward pass: its input and output, images in `layout`.
struct Step {
    input: Tensor,
    output: Tensor,
    layout: ImageLayout,
}

/// A named layer sequence; names scope the weights (`gen.block1.conv.weight`).
#[derive(Debug, Clone, Default)]
pub struct Network {
    layers: Vec<(String, Layer)>,
    /// Activations' dtype when it differs from the input's (mixed precision).
    activations: Option<DType>,
}

impl Network {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, name: impl Into<String>, layer: Layer) {
        self.layers.push((name.into(), layer));
    }

    pub fn layers(&self) -> &[(String, Layer)] {
        &self.layers
    }

    /// The same network computing its activations in `dtype` (`None`: in the input's
    /// dtype, the default); weights stay in their own dtype (see the module's note).
    pub fn with_activations(mut self, dtype: Option<DType>) -> Self {
        self.activations = dtype;
        self
    }

    /// `x` in the activations' dtype.
    fn to_activations(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.to_dtype(self.activations.unwrap_or(x.dtype()))
    }

    /// The same network on detached parameters (sharing their storage, so it sees every
    /// update): its forward pass computes no weight gradients. The generator step runs
    /// the critic this way, as PyTorch code does with `requires_grad_(False)`.
    pub fn frozen(&self) -> Self {
        let layers = self
            .layers
            .iter()
            .map(|(name, layer)| {
                let layer = match layer {
                    Layer::Linear(l) => Layer::Linear(l.frozen()),
                    Layer::Conv(c) => Layer::Conv(c.frozen()),
                    Layer::ConvTranspose(c) => Layer::ConvTranspose(c.frozen()),
                    Layer::BatchNorm(bn) => Layer::BatchNorm(bn.frozen()),
                    Layer::LayerNorm(ln) => Layer::LayerNorm(ln.frozen()),
                    other => other.clone(),
                };
                (name.clone(), layer)
            })
            .collect();
        Self { layers, activations: self.activations }
    }

    /// Whether a sample's output in training mode depends on the other samples of its
    /// batch (batch norm couples them). When it does not, batches concatenated into one
    /// forward pass give each the outputs it would get alone.
    pub fn couples_samples(&self) -> bool {
        self.layers.iter().any(|(_, layer)| matches!(layer, Layer::BatchNorm(_)))
    }

    /// Forward pass; `train` selects batch statistics in batch norm (and updates the running ones).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_mode(x, if train { BnMode::Train } else { BnMode::Eval })
    }

    /// Forward pass with batch norm in the given mode.
    /// Batch norm or a convolution followed by a (leaky) ReLU runs as one fused op where
    /// ganzoo's kernels take the tensor: the same values, without the intermediate.
    pub fn forward_mode(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let (mut h, mut current) = (self.to_activations(x)?, ImageLayout::Nchw);
        let working = working_layout(&h);
        let mut layers = self.layers.iter().map(|(_, layer)| layer).peekable();
        while let Some(layer) = layers.next() {
            let layout = layer.layout(working, current);
            h = relayout(&h, current, layout)?;
            current = layout;
            if let Some(fused) = then_activation(layer, layers.peek().copied(), &h, mode, layout) {
                h = fused?;
                layers.next();
            } else {
                h = layer.forward_in(&h, mode, layout)?;
            }
        }
        Ok(relayout(&h, current, ImageLayout::Nchw)?.to_dtype(x.dtype())?)
    }

    /// Each layer's input and output in the layout it ran in, and the network's
    /// output (NCHW), all in the activations' dtype.
    fn steps(&self, x: &Tensor, mode: BnMode) -> Result<(Vec<Step>, Tensor)> {
        let mut steps: Vec<Step> = Vec::with_capacity(self.layers.len());
        let (mut h, mut current) = (self.to_activations(x)?, ImageLayout::Nchw);
        let working = working_layout(&h);
        for (_, layer) in &self.layers {
            let layout = layer.layout(working, current);
            let input = relayout(&h, current, layout)?;
            h = layer.forward_in(&input, mode, layout)?;
            current = layout;
            steps.push(Step { input, output: h.clone(), layout });
        }
        Ok((steps, relayout(&h, current, ImageLayout::Nchw)?))
    }

    /// Every layer's output, in order (images NCHW, in the input's dtype).
    pub fn trace(&self, x: &Tensor, train: bool) -> Result<Vec<Tensor>> {
        let mode = if train { BnMode::Train } else { BnMode::Eval };
        let (steps, _) = self.steps(x, mode)?;
        Ok(steps
            .iter()
            .map(|s| relayout(&s.output, s.layout, ImageLayout::Nchw)?.to_dtype(x.dtype()))
            .collect::<candle_core::Result<_>>()?)
    }

    /// `f(x)` and `∇ₓ Σ_b f(x)_b` (same shape and dtype as `x`) as a differentiable graph.
    /// Batch norm couples the samples of a batch, so its per-sample gradient is undefined: error.
    pub fn input_gradient(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (steps, out) = self.steps(x, BnMode::Train)?;
        // `dy` in layout `at`: each step's output gradient in its layout, then (the
        // relayouts being permutations) carried to the previous step's by relayout.
        let (mut dy, mut at) = (out.ones_like()?, ImageLayout::Nchw);
        for ((name, layer), step) in self.layers.iter().zip(&steps).rev() {
            dy = relayout(&dy, at, step.layout)?;
            at = step.layout;
            let (input, layout) = (&step.input, step.layout);
            dy = match layer {
                Layer::Linear(l) => l.input_grad(&dy)?,
                Layer::Conv(c) => c.input_grad(&dy, input, layout)?,
                Layer::ConvTranspose(c) => c.input_grad(&dy, layout)?,
                Layer::LayerNorm(ln) => ln.input_grad(&dy, input, layout)?,
                Layer::Act(a) => a.input_grad(&dy, input, &step.output)?,
                Layer::Reshape(_) => dy.reshape(input.shape())?,
                Layer::BatchNorm(_) => {
                    return Err(ModelError::Unsupported {
                        layer: name.clone(),
                        kind: layer.kind(),
                        what: "a per-sample input gradient (use layer norm or no normalisation in a WGAN-GP critic)",
                    })
                }
            };
        }
        let back = |t: &Tensor| t.to_dtype(x.dtype());
        Ok((back(&out)?, back(&relayout(&dy, at, ImageLayout::Nchw)?)?))
    }
}
