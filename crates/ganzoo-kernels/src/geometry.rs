//! The shape of one convolution: input `(N, C, H, W)`, kernel `(O, C, kh, kw)`,
//! output `(N, O, H', W')` with `H' = ⌊(H + 2p − d(kh − 1) − 1)/s⌋ + 1` (and the
//! same for widths), stride `s`, padding `p`, dilation `d`. The images may lie
//! channels-first or channels-last ([`ImageLayout`]); the geometry is the same.

use candle_core::{bail, Result};

use crate::image_layout::ImageLayout;

/// Stride, zero padding and dilation, the same along both spatial axes, and the
/// layout of the images (input and output alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub layout: ImageLayout,
}

impl ConvParams {
    /// Dilation 1, NCHW images.
    pub const fn new(stride: usize, padding: usize) -> Self {
        Self { stride, padding, dilation: 1, layout: ImageLayout::Nchw }
    }

    /// The same parameters on images in `layout`.
    pub fn with_layout(self, layout: ImageLayout) -> Self {
        Self { layout, ..self }
    }

    pub fn channels_last(&self) -> bool {
        self.layout == ImageLayout::Nhwc
    }

    /// Output side of a convolution over an input side `input` with a kernel side `kernel`.
    pub fn out_side(&self, input: usize, kernel: usize) -> Option<usize> {
        let span = self.dilation.checked_mul(kernel.checked_sub(1)?)? + 1;
        let padded = input.checked_add(2 * self.padding)?;
        (self.stride > 0).then_some(())?;
        Some(padded.checked_sub(span)? / self.stride + 1)
    }

    /// Output side of the transposed convolution: the smallest input side of the
    /// forward one whose output side is `input`, plus `output_padding`.
    pub fn transposed_side(&self, input: usize, kernel: usize, output_padding: usize) -> Option<usize> {
        let full = (input.checked_sub(1)? * self.stride + self.dilation * kernel.checked_sub(1)? + 1 + output_padding)
            .checked_sub(2 * self.padding)?;
        (full > 0).then_some(full)
    }
}

/// Every size of one convolution, checked to be consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub cin: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub cout: usize,
    pub k_h: usize,
    pub k_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub params: ConvParams,
    /// Samples unfolded at once; `None` sizes blocks to `COLS_BUDGET` (1 MiB of `f32`) on
    /// the CPU, to `conv_columns`' `COLUMN_BYTES` (64 MiB) on CUDA.
    pub block: Option<usize>,
    /// The forward GEMM's output layout; `None` decides by shape
    /// (see [`ConvGeometry::output_channels_last`]).
    pub channels_last: Option<bool>,
    /// Whether the three primitives run as Winograd's F(2×2, 2×2); `None` decides by
    /// shape and `GANZOO_WINOGRAD` (see [`ConvGeometry::winograd`]).
    pub winograd: Option<bool>,
}

/// Elements of `im2col`'s matrix processed at once (1 MiB of `f32`): large enough
/// for an efficient GEMM, small enough that the block is still in cache when the GEMM
/// reads it (measurements: docs/performance.md, "Block sizes").
const COLS_BUDGET: usize = 1 << 18;

/// Output pixels (`n·H'·W'`, rows of the im2col matrix) a block has at least, even past
/// [`COLS_BUDGET`]. The GEMM repacks the kernel for every block, and the weight
/// gradient reads and writes all of `dW` once per block: on layers with small outputs
/// and large kernels, tiny blocks spend more on packing and `dW` traffic than on the
/// multiply (measurements: docs/performance.md, "Block sizes").
const MIN_BLOCK_ROWS: usize = 512;

/// Output pixels (over the batch) per output channel from which the forward GEMM runs
/// channels-last (see [`ConvGeometry::output_channels_last`]; measurements:
/// docs/performance.md, "Block sizes").
const CHANNELS_LAST_PIXELS_PER_CHANNEL: usize = 8;

impl ConvGeometry {
    /// Input `(batch, cin, in_h, in_w)` and kernel `(cout, cin, k_h, k_w)`.
    pub fn new(input: [usize; 4], kernel: [usize; 4], params: ConvParams) -> Result<Self> {
        let [batch, cin, in_h, in_w] = input;
        let [cout, kc, k_h, k_w] = kernel;
        if kc != cin {
            bail!("convolution: kernel {kernel:?} expects {kc} input channels, input {input:?} has {cin}");
        }
        if params.stride == 0 || params.dilation == 0 {
            bail!("convolution: stride and dilation must be at least 1, got {params:?}");
        }
        if input.contains(&0) || kernel.contains(&0) {
            bail!("convolution: empty input {input:?} or kernel {kernel:?}");
        }
        let (Some(out_h), Some(out_w)) = (params.out_side(in_h, k_h), params.out_side(in_w, k_w)) else {
            bail!("convolution: kernel {kernel:?} with {params:?} does not fit in input {input:?}");
        };
        Ok(Self {
            batch,
            cin,
            in_h,
            in_w,
            cout,
            k_h,
            k_w,
            out_h,
            out_w,
            params,
            block: None,
            channels_last: None,
            winograd: None,
        })
    }

    /// Rows of the im2col matrix: `C·kh·kw`.
    pub fn patch(&self) -> usize {
        self.cin * self.k_h * self.k_w
    }

    pub fn in_plane(&self) -> usize {
        self.in_h * self.in_w
    }

    pub fn out_plane(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Whether the convolution is one dense product: the kernel as large as the
    /// unpadded, undilated image, so one output pixel whose patch is the whole image.
    pub fn dense(&self) -> bool {
        let p = &self.params;
        p.padding == 0 && p.dilation == 1 && self.k_h == self.in_h && self.k_w == self.in_w
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.cin * self.in_plane()
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.cout * self.out_plane()
    }

    pub fn kernel_len(&self) -> usize {
        self.cout * self.patch()
    }

    /// The same convolution unfolding `samples` samples at a time.
    pub fn with_block(self, samples: usize) -> Self {
        Self { block: Some(samples), ..self }
    }

    /// The same convolution with the forward GEMM's output layout fixed.
    pub fn with_output_channels_last(self, channels_last: bool) -> Self {
        Self { channels_last: Some(channels_last), ..self }
    }

    /// The same convolution with Winograd's transform chosen (where it fits) or not.
    pub fn with_winograd(self, winograd: bool) -> Self {
        Self { winograd: Some(winograd), ..self }
    }

    /// Whether the primitives run as Winograd's F(2×2, 2×2) ([`crate::winograd`]): on
    /// the shapes it fits, as [`Self::with_winograd`] said, else as `GANZOO_WINOGRAD`
    /// says (by default where it pays).
    pub fn winograd(&self) -> bool {
        use crate::winograd::{fits, pays, Mode};
        fits(self)
            && self.winograd.unwrap_or_else(|| match Mode::from_env() {
                Mode::Off => false,
                Mode::WherePays => pays(self),
                Mode::Always => true,
            })
    }

    /// Samples per im2col block, at least one. Blocks sized to `COLS_BUDGET` (but
    /// with at least `MIN_BLOCK_ROWS` (512) output pixels) come in
    /// a multiple of rayon's thread count where the batch allows, all of one size but
    /// perhaps the last, so the threads get equal shares.
    pub fn chunk(&self) -> usize {
        if let Some(samples) = self.block {
            return samples.clamp(1, self.batch);
        }
        let by_size = COLS_BUDGET / (self.patch() * self.out_plane()).max(1);
        let budget = by_size.max(MIN_BLOCK_ROWS.div_ceil(self.out_plane())).clamp(1, self.batch);
        let blocks = self.batch.div_ceil(budget).next_multiple_of(rayon::current_num_threads()).min(self.batch);
        self.batch.div_ceil(blocks)
    }

    /// Whether [`crate::forward`] multiplies with the output channels-last,
    /// `Ŷᵀ = cols · Wcᵀ` of shape `(n·H'·W', O)`, rather than `Ŷ = Wc · colsᵀ`: the
    /// `gemm` crate then reads the im2col block as it lies instead of repacking it
    /// (a transposing copy of the whole block), at the price of transposing the kernel
    /// once per call and the output once per block. Worth it when the output has many
    /// more pixels than channels (see the constant `CHANNELS_LAST_PIXELS_PER_CHANNEL`), unless
    /// [`Self::with_output_channels_last`] decided.
    pub fn output_channels_last(&self) -> bool {
        let by_shape = || self.batch * self.out_plane() >= CHANNELS_LAST_PIXELS_PER_CHANNEL * self.cout;
        self.channels_last.unwrap_or_else(by_shape)
    }

    /// Multiply-adds of one forward pass (each of the three primitives costs the same).
    pub fn macs(&self) -> usize {
        self.batch * self.cout * self.out_plane() * self.patch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_follow_the_formulas() {
        let p = ConvParams::new(2, 1);
        assert_eq!(p.out_side(64, 4), Some(32));
        assert_eq!(p.transposed_side(32, 4, 0), Some(64));
        assert_eq!(ConvParams::new(1, 0).out_side(4, 4), Some(1));
        assert_eq!(ConvParams::new(1, 0).transposed_side(1, 4, 0), Some(4));
        assert_eq!(ConvParams { dilation: 2, ..ConvParams::new(1, 0) }.out_side(7, 3), Some(3));
        assert_eq!(ConvParams::new(1, 0).out_side(2, 3), None);
        assert_eq!(ConvParams::new(2, 1).out_side(7, 3), Some(4));
        assert_eq!(ConvParams::new(2, 1).transposed_side(4, 3, 0), Some(7));
        assert_eq!(ConvParams::new(2, 1).transposed_side(4, 3, 1), Some(8));
    }

    #[test]
    fn blocks_fill_the_budget_but_keep_enough_rows() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let geometry = |input, kernel| ConvGeometry::new(input, kernel, ConvParams::new(2, 1)).unwrap();
        // dcgan64's D2: 1 024 × 256 values per sample, so one sample fills 1 MiB; its
        // 256 output pixels are half the minimum, so blocks hold two samples.
        let wide = geometry([64, 64, 32, 32], [128, 64, 4, 4]);
        // D4: 4 096 × 16 per sample would allow 4 samples (64 rows); 512 rows need 32.
        let deep = geometry([64, 256, 8, 8], [512, 256, 4, 4]);
        // A small input: the whole batch fits, then splits in two for the two threads.
        let small = geometry([8, 3, 16, 16], [4, 3, 4, 4]);
        let chunks = pool.install(|| [wide.chunk(), deep.chunk(), small.chunk(), small.with_block(3).chunk()]);
        assert_eq!(chunks, [2, 32, 4, 3]);
        // D2 has 16 384 output pixels for 128 channels; D4 1 024 for 512.
        assert_eq!([wide.output_channels_last(), deep.output_channels_last()], [true, false]);
        assert!(!wide.with_output_channels_last(false).output_channels_last());
    }

    #[test]
    fn mismatched_channels_are_refused() {
        assert!(ConvGeometry::new([1, 3, 8, 8], [4, 2, 3, 3], ConvParams::new(1, 0)).is_err());
        assert!(ConvGeometry::new([1, 3, 2, 2], [4, 3, 3, 3], ConvParams::new(1, 0)).is_err());
        assert!(ConvGeometry::new([1, 3, 8, 8], [4, 3, 3, 3], ConvParams::new(0, 0)).is_err());
    }
}
