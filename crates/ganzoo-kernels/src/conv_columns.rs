//! The three convolution primitives on a back end's storage (NCHW): the back end unfolds
//! and folds ([`Columns`]: ganzoo's CUDA kernels), and Candle's product (cuBLAS on CUDA)
//! multiplies. Batches whose columns would pass [`COLUMN_BYTES`] go in chunks of samples.
//!
//! With `P = C·kh·kw`, `L = H'·W'`, the kernel `W (O, P)` and `X̃ = im2col(x)`, by default
//! ([`Products::PerChunk`]) one product a chunk of `n` samples, the columns laid out `(P,
//! n·L)`: forward `Y = W·X̃`, `(O, n·L)`, reordered to NCHW; adjoint `x = col2im(Wᵀ·dy)`,
//! `dy` reordered to `(O, n·L)`; weight gradient `dW = dy·X̃ᵀ` over the chunk, the
//! chunks' products summed. [`Products::PerSample`]: forward and adjoint as cuBLAS's
//! batched product, one `(O, P)·(P, L)` or `(P, O)·(O, L)` product a sample, which on
//! small images (`L` = 16 pixels) multiplies skinny matrices.
//!
//! A dense convolution ([`ConvGeometry::dense`]: the kernel covers the whole unpadded
//! image, as in DCGAN's first generator and last critic layers) is one plain product
//! each way, with no columns: its images as they lie are its columns `(N, P)`.
//!
//! Every layout handed to the product is one cuBLAS takes as Candle calls it (leading
//! dimensions the rows' lengths, any batch stride, 0 included); the tests below hold
//! them to that rule, and the arithmetic to the CPU kernels, on the CPU.

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::{bail, Layout, Result, Shape};

use crate::geometry::ConvGeometry;

/// How im2col columns lie: for sample `n`, patch row `p` and output pixel `l` of a chunk of
/// `N` samples, the entry's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnLayout {
    /// `(N, P, L)`: each sample's `(P, L)` matrix in turn.
    Npl,
    /// `(N, L, P)`: a row of `P` values per output pixel.
    Nlp,
    /// `(P, N, L)`: a row per patch entry, every sample's pixels side by side.
    Pnl,
}

impl ColumnLayout {
    /// The kernels' `layout` argument (`column_index` in `cuda/kernels.cu`).
    #[cfg(feature = "cuda")]
    pub(crate) fn code(self) -> i32 {
        match self {
            Self::Npl => 0,
            Self::Nlp => 1,
            Self::Pnl => 2,
        }
    }

    /// The index of sample `n`'s entry for patch row `p`, pixel `l`, in `g`'s columns.
    #[cfg(test)]
    fn index(self, g: &ConvGeometry, n: usize, p: usize, l: usize) -> usize {
        let (batch, patch, pixels) = (g.batch, g.patch(), g.out_plane());
        match self {
            Self::Npl => (n * patch + p) * pixels + l,
            Self::Nlp => (n * pixels + l) * patch + p,
            Self::Pnl => (p * batch + n) * pixels + l,
        }
    }
}

/// How the forward and adjoint products cover a chunk of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Products {
    /// One product for the chunk, the columns `(P, n·L)`.
    PerChunk,
    /// cuBLAS's batched product, a product per sample.
    PerSample,
}

/// What a back end adds to Candle's storage for the convolutions: im2col and col2im.
pub(crate) trait Columns: BackendStorage + Sized {
    /// The im2col columns of the NCHW images `(self, l)`, `g.batch·P·L` values in `layout`.
    fn im2col(&self, l: &Layout, g: &ConvGeometry, layout: ColumnLayout) -> Result<Self>;

    /// The NCHW images `(N, C, H, W)` whose values sum the columns `self` (in `layout`)
    /// unfolded from them (the adjoint of [`Columns::im2col`]).
    fn col2im(&self, g: &ConvGeometry, layout: ColumnLayout) -> Result<Self>;

    /// Candle's batched product `(b, m, k)·(b, k, n)` (the tests check the layouts here).
    fn product(&self, rhs: &Self, bmnk: (usize, usize, usize, usize), lhs: &Layout, rhs_l: &Layout) -> Result<Self> {
        self.matmul(rhs, bmnk, lhs, rhs_l)
    }
}

/// The layout of a contiguous operand with `shape` in place of its own (same values).
fn as_shape(l: &Layout, shape: &[usize], what: &str) -> Result<Layout> {
    if !l.is_contiguous() || l.shape().elem_count() != shape.iter().product::<usize>() {
        bail!("convolution: the {what} {:?} is not a contiguous {shape:?}", l.dims());
    }
    Ok(Layout::contiguous_with_offset(shape, l.start_offset()))
}

/// The kernel `(O, C, kh, kw)` as `(N, O, P)` (`transposed`: `(N, P, O)`), batch stride 0.
fn kernel_for_each_sample(g: &ConvGeometry, w: &Layout, transposed: bool) -> Result<Layout> {
    let (o, p) = (g.cout, g.patch());
    as_shape(w, &[o, p], "kernel")?;
    Ok(if transposed {
        Layout::new((g.batch, p, o).into(), vec![0, 1, p], w.start_offset())
    } else {
        Layout::new((g.batch, o, p).into(), vec![0, p, 1], w.start_offset())
    })
}

/// Bytes of columns one product unfolds at most: 64 MiB, DCGAN 64×64's widest layer
/// (`64→128`, 4×4) at batch 64 in one product. Larger batches go in chunks of samples,
/// so the transient columns stay this size whatever the batch (at batch 256 that layer's
/// would be 256 MiB), as cuDNN's bounded workspace does.
const COLUMN_BYTES: usize = 64 << 20;

/// Samples per product: `g.block` where set (tests), else as many as [`COLUMN_BYTES`]
/// holds, in chunks of equal size but perhaps the last; at least one.
fn samples_per_product(g: &ConvGeometry) -> usize {
    let most = g
        .block
        .unwrap_or(COLUMN_BYTES / (g.patch() * g.out_plane() * size_of::<f32>()).max(1))
        .clamp(1, g.batch.max(1));
    g.batch.div_ceil(g.batch.div_ceil(most)).max(1)
}

/// Each chunk of samples as a convolution of its own, with its first sample's index.
fn chunks(g: &ConvGeometry) -> impl Iterator<Item = (ConvGeometry, usize)> + '_ {
    let size = samples_per_product(g);
    (0..g.batch).step_by(size).map(move |first| (ConvGeometry { batch: size.min(g.batch - first), ..*g }, first))
}

/// `part` run on each chunk of samples, its outputs (`per_sample` values a sample, of
/// `like`'s type and device) side by side; one chunk's output as it is.
fn side_by_side<S>(
    g: &ConvGeometry,
    per_sample: usize,
    like: &S,
    part: impl Fn(&ConvGeometry, usize) -> Result<S>,
) -> Result<S>
where
    S: Columns,
    S::Device: BackendDevice<Storage = S>,
{
    if samples_per_product(g) >= g.batch {
        return part(g, 0);
    }
    // SAFETY: the chunks write all N·per_sample values before any is read.
    let mut out = unsafe { like.device().alloc_uninit(&Shape::from(g.batch * per_sample), like.dtype())? };
    for (c, first) in chunks(g) {
        part(&c, first)?.copy_strided_src(&mut out, first * per_sample, &Layout::contiguous(c.batch * per_sample))?;
    }
    Ok(out)
}

/// The images `(first.., C, H, W)` of `x` that chunk `c` covers.
fn samples(x: &Layout, c: &ConvGeometry, first: usize) -> Result<Layout> {
    x.narrow(0, first, c.batch)
}

/// The contiguous `(rows, cols)` operand `l` read transposed, as `(1, cols, rows)`.
fn transposed(l: &Layout, (rows, cols): (usize, usize), what: &str) -> Result<Layout> {
    let l = as_shape(l, &[rows, cols], what)?;
    Ok(Layout::new((1, cols, rows).into(), vec![rows * cols, 1, cols], l.start_offset()))
}

/// The chunk's `dy (n, O, L)` as `(O, n·L)`: each channel's rows of its samples side by side.
fn by_channel<S>(dy: &S, dy_l: &Layout, c: &ConvGeometry, first: usize) -> Result<S>
where
    S: Columns,
    S::Device: BackendDevice<Storage = S>,
{
    let (o, n, l) = (c.cout, c.batch, c.out_plane());
    let order = Layout::new((o, n, l).into(), vec![l, o * l, 1], dy_l.start_offset() + first * o * l);
    // SAFETY: `copy_strided_src` writes all O·n·L values before any is read.
    let mut out = unsafe { dy.device().alloc_uninit(&Shape::from((o, n * l)), dy.dtype())? };
    dy.copy_strided_src(&mut out, 0, &order)?;
    Ok(out)
}

/// `y = W ⋆ x`: `x (N, C, H, W)`, `w (O, C, kh, kw)` → `(N, O, H', W')`.
pub(crate) fn forward<S>(g: &ConvGeometry, x: (&S, &Layout), w: (&S, &Layout), products: Products) -> Result<S>
where
    S: Columns,
    S::Device: BackendDevice<Storage = S>,
{
    let (o, p, l) = (g.cout, g.patch(), g.out_plane());
    if g.dense() {
        // y (N, O) = X (N, P) · Wᵀ (P, O).
        let (xl, wt) = (as_shape(x.1, &[1, g.batch, p], "input")?, transposed(w.1, (o, p), "kernel")?);
        return x.0.product(w.0, (1, g.batch, o, p), &xl, &wt);
    }
    if products == Products::PerSample {
        return side_by_side(g, o * l, w.0, |c, first| {
            let cols = x.0.im2col(&samples(x.1, c, first)?, c, ColumnLayout::Npl)?;
            let kernel = kernel_for_each_sample(c, w.1, false)?;
            w.0.product(&cols, (c.batch, o, l, p), &kernel, &Layout::contiguous((c.batch, p, l)))
        });
    }
    let kernel = as_shape(w.1, &[1, o, p], "kernel")?;
    // SAFETY: the chunks write all N·O·L values before any is read.
    let mut y = unsafe { w.0.device().alloc_uninit(&Shape::from(g.batch * o * l), w.0.dtype())? };
    for (c, first) in chunks(g) {
        let n = c.batch;
        let cols = x.0.im2col(&samples(x.1, &c, first)?, &c, ColumnLayout::Pnl)?;
        // Y (O, n·L) = W (O, P) · X̃ (P, n·L), copied out as (n, O, L).
        let product = w.0.product(&cols, (1, o, n * l, p), &kernel, &Layout::contiguous((1, p, n * l)))?;
        product.copy_strided_src(&mut y, first * o * l, &Layout::new((n, o, l).into(), vec![l, n * l, 1], 0))?;
    }
    Ok(y)
}

/// The adjoint of [`forward`]: `dy (N, O, H', W')`, `w (O, C, kh, kw)` → `(N, C, H, W)`.
pub(crate) fn adjoint<S>(g: &ConvGeometry, dy: (&S, &Layout), w: (&S, &Layout), products: Products) -> Result<S>
where
    S: Columns,
    S::Device: BackendDevice<Storage = S>,
{
    let (o, p, l) = (g.cout, g.patch(), g.out_plane());
    if g.dense() {
        // dx (N, P) = dy (N, O) · W (O, P), the images as they lie.
        let (dyl, wl) = (as_shape(dy.1, &[1, g.batch, o], "output gradient")?, as_shape(w.1, &[1, o, p], "kernel")?);
        return dy.0.product(w.0, (1, g.batch, p, o), &dyl, &wl);
    }
    let dy_l = as_shape(dy.1, &[g.batch, o, l], "output gradient")?;
    side_by_side(g, g.cin * g.in_plane(), w.0, |c, first| match products {
        Products::PerSample => {
            let kernel = kernel_for_each_sample(c, w.1, true)?;
            let dy_c = samples(&dy_l, c, first)?;
            w.0.product(dy.0, (c.batch, p, l, o), &kernel, &dy_c)?.col2im(c, ColumnLayout::Npl)
        }
        Products::PerChunk => {
            // X̃ (P, n·L) = Wᵀ (P, O) · dy (O, n·L).
            let dy_c = by_channel(dy.0, &dy_l, c, first)?;
            let (kernel, n) = (transposed(w.1, (o, p), "kernel")?, c.batch * l);
            let cols = w.0.product(&dy_c, (1, p, n, o), &kernel, &Layout::contiguous((1, o, n)))?;
            cols.col2im(c, ColumnLayout::Pnl)
        }
    })
}

/// `∂⟨W ⋆ x, dy⟩/∂W`: `x (N, C, H, W)`, `dy (N, O, H', W')` → `(O, C, kh, kw)`, one
/// product a chunk, the chunks' products summed.
pub(crate) fn weight_grad<S>(g: &ConvGeometry, x: (&S, &Layout), dy: (&S, &Layout)) -> Result<S>
where
    S: Columns,
    S::Device: BackendDevice<Storage = S>,
{
    let (o, p, l) = (g.cout, g.patch(), g.out_plane());
    if g.dense() {
        // dW (O, P) = dyᵀ (O, N) · X (N, P).
        let (dyt, xl) = (transposed(dy.1, (g.batch, o), "output gradient")?, as_shape(x.1, &[1, g.batch, p], "input")?);
        return dy.0.product(x.0, (1, o, p, g.batch), &dyt, &xl);
    }
    let dy_l = as_shape(dy.1, &[g.batch, o, l], "output gradient")?;
    let mut sum: Option<S> = None;
    for (c, first) in chunks(g) {
        let n = c.batch * l;
        // dW (O, P) = dy (O, n·L) · X̃ᵀ (n·L, P), the columns pixel-major.
        let dy_c = by_channel(dy.0, &dy_l, &c, first)?;
        let cols = x.0.im2col(&samples(x.1, &c, first)?, &c, ColumnLayout::Nlp)?;
        let part = dy_c.product(&cols, (1, o, p, n), &Layout::contiguous((o, n)), &Layout::contiguous((n, p)))?;
        let both = Layout::contiguous((o, p));
        sum = Some(match sum {
            None => part,
            Some(sum) => sum.binary_impl::<candle_core::op::Add>(&part, &both, &both)?,
        });
    }
    sum.ok_or_else(|| candle_core::Error::Msg("convolution weight gradient: an empty batch".into()))
}

#[cfg(test)]
mod tests {
    use candle_core::{CpuStorage, Tensor};

    use super::*;
    use crate::geometry::ConvParams;

    /// The columns in plain loops on the CPU, f32 (the CUDA kernels' definition).
    impl Columns for CpuStorage {
        fn im2col(&self, l: &Layout, g: &ConvGeometry, layout: ColumnLayout) -> Result<Self> {
            let x = &self.as_slice::<f32>()?[l.start_offset()..];
            let mut cols = vec![0f32; g.batch * g.patch() * g.out_plane()];
            for (at, source) in taps(g, layout) {
                cols[at] = source.map_or(0.0, |i| x[i]);
            }
            Ok(CpuStorage::F32(cols))
        }

        fn col2im(&self, g: &ConvGeometry, layout: ColumnLayout) -> Result<Self> {
            let cols = self.as_slice::<f32>()?;
            assert_eq!(cols.len(), g.batch * g.patch() * g.out_plane(), "col2im: columns of another geometry");
            let mut x = vec![0f32; g.batch * g.cin * g.in_plane()];
            for (at, source) in taps(g, layout) {
                if let Some(i) = source {
                    x[i] += cols[at];
                }
            }
            Ok(CpuStorage::F32(x))
        }

        fn product(&self, rhs: &Self, bmnk: (usize, usize, usize, usize), lhs: &Layout, r: &Layout) -> Result<Self> {
            assert!(cublas_takes(bmnk, lhs, r), "cuBLAS (as Candle calls it) refuses {lhs:?} · {r:?} for {bmnk:?}");
            self.matmul(rhs, bmnk, lhs, r)
        }
    }

    /// Each column entry's index in `layout` and the index of the NCHW input value it
    /// holds (`None`: padding).
    fn taps(g: &ConvGeometry, layout: ColumnLayout) -> impl Iterator<Item = (usize, Option<usize>)> + '_ {
        let (patch, pixels, s) = (g.patch(), g.out_plane(), g.params);
        let all = (0..g.batch).flat_map(move |n| (0..patch).flat_map(move |p| (0..pixels).map(move |px| (n, p, px))));
        all.map(move |(n, p, px)| {
            let (c, ky, kx) = (p / (g.k_h * g.k_w), p / g.k_w % g.k_h, p % g.k_w);
            let iy = (px / g.out_w * s.stride + ky * s.dilation).checked_sub(s.padding).filter(|&y| y < g.in_h);
            let ix = (px % g.out_w * s.stride + kx * s.dilation).checked_sub(s.padding).filter(|&x| x < g.in_w);
            (layout.index(g, n, p, px), iy.zip(ix).map(|(y, x)| ((n * g.cin + c) * g.in_h + y) * g.in_w + x))
        })
    }

    /// Candle 0.11.1's CUDA `gemm_config` rule (cuda_backend/mod.rs): each operand's two
    /// last strides are a row-major or column-major matrix with the leading dimension its
    /// side (1-long sides free), and the batch strides one stride per batch.
    fn cublas_takes((_, m, n, k): (usize, usize, usize, usize), lhs: &Layout, rhs: &Layout) -> bool {
        let last_two = |l: &Layout| {
            let s = l.stride();
            (s[s.len() - 2], s[s.len() - 1])
        };
        let matrix = |(rs, cs): (usize, usize), rows: usize, cols: usize| {
            ((cs == 1 || cols == 1) && (rs == cols || rows == 1))
                || ((rs == 1 || rows == 1) && (cs == rows || cols == 1))
        };
        let batch = |l: &Layout| l.stride().len() <= 3;
        matrix(last_two(lhs), m, k) && matrix(last_two(rhs), k, n) && batch(lhs) && batch(rhs)
    }

    fn tensor(shape: &[usize], seed: u64) -> Tensor {
        let len = shape.iter().product::<usize>();
        let v: Vec<f32> =
            (0..len).map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 500.0) - 1.0).collect();
        Tensor::from_vec(v, shape, &candle_core::Device::Cpu).unwrap()
    }

    fn storage(t: &Tensor) -> (CpuStorage, Layout) {
        let (s, l) = t.storage_and_layout();
        match &*s {
            candle_core::Storage::Cpu(s) => (s.clone(), l.clone()),
            _ => unreachable!(),
        }
    }

    fn max_diff(a: &CpuStorage, b: &Tensor) -> f32 {
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        let a = a.as_slice::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// The three primitives against the CPU kernels on odd geometries: strides, padding,
    /// dilation, non-square images and kernels, one and several samples; in one product,
    /// and in chunks of one and two samples (the last one shorter where the batch is odd);
    /// the products per chunk and per sample.
    #[test]
    fn the_column_primitives_match_the_cpu_kernels() {
        let cases = [
            ([2, 3, 7, 6], [4, 3, 3, 2], ConvParams::new(2, 1)),
            ([1, 2, 5, 5], [3, 2, 4, 4], ConvParams::new(1, 2)),
            ([3, 4, 8, 8], [5, 4, 4, 4], ConvParams::new(2, 1)),
            ([2, 1, 9, 7], [2, 1, 3, 3], ConvParams { dilation: 2, ..ConvParams::new(3, 2) }),
            ([2, 5, 4, 4], [3, 5, 4, 4], ConvParams::new(1, 0)),
        ];
        // The last is dense: one product each way, no columns.
        assert_eq!(
            cases.map(|(x, w, p)| ConvGeometry::new(x, w, p).unwrap().dense()),
            [false, false, false, false, true]
        );
        let blocks = [None, Some(1), Some(2)];
        let variants = blocks.into_iter().flat_map(|b| [Products::PerChunk, Products::PerSample].map(|p| (b, p)));
        let all = cases.iter().flat_map(|c| variants.clone().map(move |v| (*c, v)));
        for (i, ((x_dims, w_dims, params), (block, products))) in all.enumerate() {
            let g = ConvGeometry { block, ..ConvGeometry::new(x_dims, w_dims, params).unwrap() };
            let (x, w) = (tensor(&x_dims, i as u64), tensor(&w_dims, 10 + i as u64));
            let dy = tensor(&[g.batch, g.cout, g.out_h, g.out_w], 20 + i as u64);
            let ((xs, xl), (ws, wl), (dys, dyl)) = (storage(&x), storage(&w), storage(&dy));
            let case = format!("case {i}: {x_dims:?} {w_dims:?}, {block:?} samples a chunk, {products:?}");
            let y = forward(&g, (&xs, &xl), (&ws, &wl), products).unwrap();
            assert!(max_diff(&y, &crate::conv2d(&x, &w, params).unwrap()) < 1e-5, "forward, {case}");
            let dx = adjoint(&g, (&dys, &dyl), (&ws, &wl), products).unwrap();
            let want = crate::conv_transpose2d_to(&dy, &w, params, (g.in_h, g.in_w)).unwrap();
            assert!(max_diff(&dx, &want) < 1e-5, "adjoint, {case}");
            let dw = weight_grad(&g, (&xs, &xl), (&dys, &dyl)).unwrap();
            let want = crate::conv2d_weight_grad(&x, &dy, params, (g.k_h, g.k_w)).unwrap();
            assert!(max_diff(&dw, &want) < 1e-4, "weight gradient, {case}");
        }
    }

    /// The three layouts hold the same entries, each where its index says: on a batch of
    /// three, the patch-major entry of sample 1, row 5, pixel 2 lies at `(5·3 + 1)·L + 2`.
    #[test]
    fn column_layouts_are_reorderings_of_one_another() {
        let g = ConvGeometry::new([3, 2, 5, 4], [1, 2, 3, 2], ConvParams::new(1, 1)).unwrap();
        let x = tensor(&[3, 2, 5, 4], 3);
        let (xs, xl) = storage(&x);
        let (p, l) = (g.patch(), g.out_plane());
        assert_eq!(ColumnLayout::Pnl.index(&g, 1, 5, 2), (5 * 3 + 1) * l + 2);
        let unfold = |layout| xs.im2col(&xl, &g, layout).unwrap().as_slice::<f32>().unwrap().to_vec();
        let (sample, pixel, patch) = (unfold(ColumnLayout::Npl), unfold(ColumnLayout::Nlp), unfold(ColumnLayout::Pnl));
        for (n, q, px) in (0..3).flat_map(|n| (0..p).flat_map(move |q| (0..l).map(move |px| (n, q, px)))) {
            let want = sample[(n * p + q) * l + px];
            assert_eq!(pixel[ColumnLayout::Nlp.index(&g, n, q, px)], want);
            assert_eq!(patch[ColumnLayout::Pnl.index(&g, n, q, px)], want);
        }
        assert!(sample.contains(&0.0) && sample.iter().any(|&v| v != 0.0), "padding and values both");
    }

    /// Columns stay within 64 MiB a product: DCGAN 64×64's widest layer in one product at
    /// batch 64, in 4 equal chunks at 256, 3 at 130 (44 + 44 + 42); a sample over the
    /// budget alone.
    #[test]
    fn batches_go_in_chunks_of_columns_within_the_budget() {
        let dcgan = |n| ConvGeometry::new([n, 64, 32, 32], [128, 64, 4, 4], ConvParams::new(2, 1)).unwrap();
        let plan = |g: &ConvGeometry| chunks(g).map(|(c, first)| (first, c.batch)).collect::<Vec<_>>();
        assert_eq!(plan(&dcgan(64)), [(0, 64)]);
        assert_eq!(plan(&dcgan(256)), [(0, 64), (64, 64), (128, 64), (192, 64)]);
        assert_eq!(plan(&dcgan(130)), [(0, 44), (44, 44), (88, 42)]);
        let huge = ConvGeometry::new([3, 512, 64, 64], [8, 512, 4, 4], ConvParams::new(1, 0)).unwrap();
        assert_eq!(plan(&huge), [(0, 1), (1, 1), (2, 1)]);
        assert!(chunks(&dcgan(256)).all(|(c, _)| c.batch * c.patch() * c.out_plane() * 4 <= COLUMN_BYTES));
    }

    /// The rule is not vacuous: rows with a gap, or a 4-D operand, are refused.
    #[test]
    fn the_cublas_rule_refuses_what_candle_would() {
        let packed = Layout::contiguous((3, 2));
        assert!(cublas_takes((1, 2, 2, 3), &Layout::contiguous((2, 3)), &packed));
        assert!(cublas_takes((1, 2, 2, 3), &Layout::new((2, 3).into(), vec![1, 2], 0), &packed));
        assert!(!cublas_takes((1, 2, 2, 3), &Layout::new((2, 3).into(), vec![4, 1], 0), &packed));
        assert!(!cublas_takes((1, 2, 2, 3), &Layout::contiguous((1, 1, 2, 3)), &Layout::contiguous((1, 1, 3, 2))));
    }

    /// Operands at an offset into their storage (as a narrowed tensor's) are read there,
    /// through the columns and through a dense product.
    #[test]
    fn operands_are_read_from_their_offsets() {
        for (k, padding) in [(3, 1), (4, 0)] {
            let params = ConvParams::new(1, padding);
            let g = ConvGeometry::new([2, 2, 4, 4], [3, 2, k, k], params).unwrap();
            let big = tensor(&[4, 2, 4, 4], 5);
            let x = big.narrow(0, 1, 2).unwrap();
            let w = tensor(&[3, 2, k, k], 6);
            let dy = tensor(&[3, 3, g.out_h, g.out_w], 7).narrow(0, 1, 2).unwrap();
            let ((xs, xl), (ws, wl), (dys, dyl)) = (storage(&x), storage(&w), storage(&dy));
            assert_eq!((xl.start_offset(), dyl.start_offset() > 0), (32, true));
            for products in [Products::PerChunk, Products::PerSample] {
                let y = forward(&g, (&xs, &xl), (&ws, &wl), products).unwrap();
                assert!(max_diff(&y, &crate::conv2d(&x, &w, params).unwrap()) < 1e-5);
                let dx = adjoint(&g, (&dys, &dyl), (&ws, &wl), products).unwrap();
                assert!(max_diff(&dx, &crate::conv_transpose2d_to(&dy, &w, params, (4, 4)).unwrap()) < 1e-5);
            }
            let dw = weight_grad(&g, (&xs, &xl), (&dys, &dyl)).unwrap();
            assert!(max_diff(&dw, &crate::conv2d_weight_grad(&x, &dy, params, (k, k)).unwrap()) < 1e-4);
        }
    }
}
