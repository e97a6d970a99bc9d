// ganzoo's CUDA kernels, f32: training-mode batch norm (statistics, forward, backward;
// each fused with a following (leaky) ReLU), layer norm (forward, the affine gradients,
// the input gradient and its derivative), the leaky-ReLU mask, and in-place moving
// averages (the optimisers' moments, batch norm's running statistics), optimiser steps
// and weight clipping (per tensor, or all of an optimiser's tensors in one launch);
// im2col and col2im for the convolutions (cuBLAS multiplies). The arithmetic is the CPU
// kernels' (batch_norm.rs, layer_norm.rs, leaky_relu.rs, optim.rs): sums and coefficients
// in f64, rounded to f32 where the CPU rounds; build.rs compiles this file with
// --fmad=false, so no product is fused into an addition that the CPU code rounds
// separately.
//
// Launch shapes (cuda/mod.rs): the per-channel and per-sample kernels run one block of
// GZ_BLOCK threads per channel or sample; the elementwise kernels any grid, striding.

#define GZ_BLOCK 512

// Sums each of the K values over the block; every thread gets the totals.
template <int K>
__device__ void block_sums(double (&v)[K]) {
    __shared__ double s[K][GZ_BLOCK];
    const unsigned t = threadIdx.x;
    for (int k = 0; k < K; ++k) s[k][t] = v[k];
    __syncthreads();
    for (unsigned half = GZ_BLOCK / 2; half > 0; half >>= 1) {
        if (t < half) {
            for (int k = 0; k < K; ++k) s[k][t] += s[k][t + half];
        }
        __syncthreads();
    }
    for (int k = 0; k < K; ++k) v[k] = s[k][0];
    __syncthreads();  // every thread has read the totals before s can be written again
}

// The flat index of the `i`-th value of channel `ch` of an (n, c, plane) image.
__device__ __forceinline__ size_t channel_index(size_t i, int ch, int c, int plane) {
    const size_t sample = i / plane;
    return (sample * c + ch) * plane + (i - sample * plane);
}

// Per channel of x (n, c, plane): mean, biased variance, and the forward pass's
// `scale = γ/√(σ² + ε)`, `shift = β − μ·scale`, as the rows of stats (4, c). Unless
// running_mean is 0, the running statistics (addresses of c floats each) are updated too,
// as gz_moving_average would from the rows: r ← keep·r + (1 − keep)·row·scale, the
// variance's scale `unbias` (n/(n − 1)), the mean's 1.
extern "C" __global__ void gz_bn_statistics(const float* x, const float* gamma, const float* beta, float* stats,
                                            int n, int c, int plane, double eps, unsigned long long running_mean,
                                            unsigned long long running_var, double keep, double unbias) {
    const int ch = blockIdx.x;
    const size_t count = (size_t)n * plane;
    double sums[2] = {0.0, 0.0};
    for (size_t i = threadIdx.x; i < count; i += GZ_BLOCK) {
        const double v = x[channel_index(i, ch, c, plane)];
        sums[0] += v;
        sums[1] += v * v;
    }
    block_sums(sums);
    const double s = sums[0], ss = sums[1];
    if (threadIdx.x == 0) {
        const double mean = s / (double)count;
        const double var = fmax(ss / (double)count - mean * mean, 0.0);
        const double scale = (double)gamma[ch] / sqrt(var + eps);
        stats[ch] = (float)mean;
        stats[c + ch] = (float)var;
        stats[2 * c + ch] = (float)scale;
        stats[3 * c + ch] = (float)((double)beta[ch] - mean * scale);
        if (running_mean != 0) {
            float* rm = (float*)running_mean;
            float* rv = (float*)running_var;
            const double m = (double)stats[ch] * 1.0, v = (double)stats[c + ch] * unbias;
            rm[ch] = (float)(keep * (double)rm[ch] + (1.0 - keep) * m);
            rv[ch] = (float)(keep * (double)rv[ch] + (1.0 - keep) * v);
        }
    }
}

// y = x·scale + shift per channel, through a leaky ReLU of slope `slope` if `activate`.
extern "C" __global__ void gz_bn_forward(const float* x, const float* stats, float* y, size_t len, int c, int plane,
                                         float slope, int activate) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        const int ch = (int)((i / plane) % c);
        float z = x[i] * stats[2 * c + ch];
        z += stats[3 * c + ch];
        if (activate) {
            const float negative = z * slope;
            z = z > 0.0f ? z : negative;
        }
        y[i] = z;
    }
}

// The upstream gradient through the activation: masked by the output's sign.
__device__ __forceinline__ float masked_grad(const float* dy, const float* y, size_t k, float slope, int activate) {
    const float g = dy[k];
    return (activate && !(y[k] > 0.0f)) ? g * slope : g;
}

// out = [dx | dγ | dβ] for x (n, c, plane), one block per channel:
// dx = γ/√(σ² + ε) · (dy − mean(dy) − x̂ · mean(dy · x̂)), dγ = Σ dy · x̂, dβ = Σ dy,
// with dy first masked by the activation when `activate` (y: the forward's output).
extern "C" __global__ void gz_bn_backward(const float* x, const float* dy, const float* y, const float* gamma,
                                          const float* stats, float* out, int n, int c, int plane, double eps,
                                          float slope, int activate) {
    const int ch = blockIdx.x;
    const size_t count = (size_t)n * plane;
    double sums[2] = {0.0, 0.0};
    for (size_t i = threadIdx.x; i < count; i += GZ_BLOCK) {
        const size_t k = channel_index(i, ch, c, plane);
        const double g = masked_grad(dy, y, k, slope, activate);
        sums[0] += g;
        sums[1] += g * (double)x[k];
    }
    block_sums(sums);
    const double s_dy = sums[0], s_dyx = sums[1];
    const double mean = stats[ch];
    const double rstd = 1.0 / sqrt((double)stats[c + ch] + eps);
    const double scale = (double)gamma[ch] * rstd;
    const double d_gamma = (s_dyx - mean * s_dy) * rstd;
    const double per_x_wide = -scale * (d_gamma / (double)count) * rstd;
    const float per_dy = (float)scale;
    const float per_x = (float)per_x_wide;
    const float offset = (float)(-scale * (s_dy / (double)count) - per_x_wide * mean);
    for (size_t i = threadIdx.x; i < count; i += GZ_BLOCK) {
        const size_t k = channel_index(i, ch, c, plane);
        float z = masked_grad(dy, y, k, slope, activate) * per_dy;
        z += x[k] * per_x;
        z += offset;
        out[k] = z;
    }
    if (threadIdx.x == 0) {
        const size_t len = count * c;
        out[len + ch] = (float)d_gamma;
        out[len + c + ch] = (float)s_dy;
    }
}

// Layer norm (layer_norm.rs): per sample of n values, μ and σ = √(var + ε), x̂ = (x − μ)/σ.
// One block per sample, except gz_ln_affine_grad (one thread per sample element).
struct Sample {
    double mean, sigma, rstd;
};

__device__ Sample sample_of(double s, double ss, size_t n, double eps) {
    Sample m;
    m.mean = s / (double)n;
    m.sigma = sqrt(fmax(ss / (double)n - m.mean * m.mean, 0.0) + eps);
    m.rstd = 1.0 / m.sigma;
    return m;
}

// The moments of the block's sample: its n values from x + base, summed over the block.
__device__ Sample block_sample(const float* x, size_t base, size_t n, double eps) {
    double sums[2] = {0.0, 0.0};
    for (size_t k = threadIdx.x; k < n; k += GZ_BLOCK) {
        const double v = x[base + k];
        sums[0] += v;
        sums[1] += v * v;
    }
    block_sums(sums);
    return sample_of(sums[0], sums[1], n, eps);
}

// `(mean(w), mean(w ⊙ x̂))` from Σw and Σw·x.
__device__ void means(const Sample& m, double s_w, double s_wx, size_t n, double& w_mean, double& wx_mean) {
    w_mean = s_w / (double)n;
    wx_mean = (s_wx - m.mean * s_w) * m.rstd / (double)n;
}

// y = x̂ ⊙ γ + β.
extern "C" __global__ void gz_ln_forward(const float* x, const float* gamma, const float* beta, float* y, size_t n,
                                         double eps) {
    const size_t base = (size_t)blockIdx.x * n;
    const Sample m = block_sample(x, base, n, eps);
    for (size_t k = threadIdx.x; k < n; k += GZ_BLOCK) {
        const double xhat = ((double)x[base + k] - m.mean) * m.rstd;
        y[base + k] = (float)(xhat * (double)gamma[k] + (double)beta[k]);
    }
}

// moments[2i], moments[2i + 1] = μ, 1/σ of sample i.
extern "C" __global__ void gz_ln_moments(const float* x, double* moments, size_t n, double eps) {
    const Sample m = block_sample(x, (size_t)blockIdx.x * n, n, eps);
    if (threadIdx.x == 0) {
        moments[2 * blockIdx.x] = m.mean;
        moments[2 * blockIdx.x + 1] = m.rstd;
    }
}

// out = [Σ_b dy ⊙ x̂ | Σ_b dy] (2n), samples summed in order, from gz_ln_moments' moments.
extern "C" __global__ void gz_ln_affine_grad(const float* x, const float* dy, const double* moments, float* out,
                                             int b, size_t n) {
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        double sg = 0.0, sb = 0.0;
        for (int i = 0; i < b; ++i) {
            const double d = dy[(size_t)i * n + k];
            sb += d;
            sg += d * ((double)x[(size_t)i * n + k] - moments[2 * i]) * moments[2 * i + 1];
        }
        out[k] = (float)sg;
        out[n + k] = (float)sb;
    }
}

// Q(x, g) = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / σ.
extern "C" __global__ void gz_ln_input_grad(const float* x, const float* g, float* out, size_t n, double eps) {
    const size_t base = (size_t)blockIdx.x * n;
    double sums[4] = {0.0, 0.0, 0.0, 0.0};
    for (size_t k = threadIdx.x; k < n; k += GZ_BLOCK) {
        const double v = x[base + k], w = g[base + k];
        sums[0] += v;
        sums[1] += v * v;
        sums[2] += w;
        sums[3] += w * v;
    }
    block_sums(sums);
    const Sample m = sample_of(sums[0], sums[1], n, eps);
    double g_mean, gx_mean;
    means(m, sums[2], sums[3], n, g_mean, gx_mean);
    for (size_t k = threadIdx.x; k < n; k += GZ_BLOCK) {
        const double xhat = ((double)x[base + k] - m.mean) * m.rstd;
        out[base + k] = (float)(((double)g[base + k] - g_mean - xhat * gx_mean) * m.rstd);
    }
}

// ∂⟨h, Q(x, g)⟩/∂x = P v / σ + (s/N) x̂, v = −(m h + k g)/σ, s = −⟨h, P g⟩/σ²,
// m = mean(g ⊙ x̂), k = mean(h ⊙ x̂) (layer_norm.rs, `second`).
extern "C" __global__ void gz_ln_second(const float* x, const float* g, const float* h, float* out, size_t n,
                                        double eps) {
    const size_t base = (size_t)blockIdx.x * n;
    double sums[7] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    for (size_t j = threadIdx.x; j < n; j += GZ_BLOCK) {
        const double v = x[base + j], w = g[base + j], u = h[base + j];
        sums[0] += v;
        sums[1] += v * v;
        sums[2] += w;
        sums[3] += w * v;
        sums[4] += u;
        sums[5] += u * v;
        sums[6] += u * w;
    }
    block_sums(sums);
    const Sample s = sample_of(sums[0], sums[1], n, eps);
    const double nf = (double)n;
    double g_mean, m, h_mean, k;
    means(s, sums[2], sums[3], n, g_mean, m);
    means(s, sums[4], sums[5], n, h_mean, k);
    const double h_pg = sums[6] - nf * g_mean * h_mean - nf * m * k;
    const double scale = -h_pg / (s.sigma * s.sigma) / nf;
    const double v_mean = -(m * h_mean + k * g_mean) * s.rstd;
    const double vx_mean = -2.0 * m * k * s.rstd;
    for (size_t j = threadIdx.x; j < n; j += GZ_BLOCK) {
        const double xhat = ((double)x[base + j] - s.mean) * s.rstd;
        const double v = -(m * (double)h[base + j] + k * (double)g[base + j]) * s.rstd;
        out[base + j] = (float)((v - v_mean - xhat * vx_mean) * s.rstd + scale * xhat);
    }
}

// out = g where x > 0, else g·slope (the leaky ReLU with g = x, its gradient with g = dy).
extern "C" __global__ void gz_leaky_relu_mask(const float* x, const float* g, float* out, size_t len, float slope) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        out[i] = x[i] > 0.0f ? g[i] : g[i] * slope;
    }
}

// v ← lo where v < lo, hi where v > hi (WGAN's weight clipping; NaN stays NaN).
extern "C" __global__ void gz_clamp(float* v, size_t len, float lo, float hi) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        const float x = v[i];
        v[i] = x < lo ? lo : (x > hi ? hi : x);
    }
}

// d ← β·d + (1 − β)·f(g·scale), f(v) = v or v², in f64.
extern "C" __global__ void gz_moving_average(float* d, const float* g, size_t len, double beta, double scale,
                                             int square) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        const double v = (double)g[i] * scale;
        d[i] = (float)(beta * (double)d[i] + (1.0 - beta) * (square ? v * v : v));
    }
}

// θ ← θ − lr · (a·a_scale) / (√(b·b_scale) + ε), or / √(b·b_scale + ε) with eps_in_root, in f64.
extern "C" __global__ void gz_scaled_step(float* theta, const float* a, const float* b, size_t len, double lr,
                                          double a_scale, double b_scale, double eps, int eps_in_root) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        const double v = (double)b[i] * b_scale;
        const double root = eps_in_root ? sqrt(v + eps) : sqrt(v) + eps;
        const double step = lr * ((double)a[i] * a_scale) / root;
        theta[i] = (float)((double)theta[i] - step);
    }
}

// The multi-tensor kernels' address tables: `count` rows of `per` addresses, then count + 1
// offsets, each tensor's first index in the tensors' concatenation (the total last).
// The tensor holding index i of the concatenation: the last k with offsets[k] <= i (empty
// tensors, whose offset is the next one's, are passed over).
__device__ __forceinline__ int table_tensor(const unsigned long long* offsets, int count, size_t i) {
    int lo = 0, hi = count - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (offsets[mid] <= i) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// One optimiser's step on all its tensors in one launch (PyTorch's foreach optimisers'
// idea): table rows (θ, g, m, v) (table_tensor). With adam, m and v as gz_moving_average
// (scale 1), then θ as gz_scaled_step with a = m, b = v; else RMSprop: v (β2 = α), then θ
// with a = g. The same arithmetic in the same order as those kernels, so the same bits.
extern "C" __global__ void gz_multi_step(const unsigned long long* table, int count, size_t total, double lr,
                                         double beta1, double beta2, double a_scale, double b_scale, double eps,
                                         int eps_in_root, int adam) {
    const unsigned long long* offsets = table + 4 * (size_t)count;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int k = table_tensor(offsets, count, i);
        const size_t j = i - offsets[k];
        float* theta = (float*)table[4 * k];
        const float* g = (const float*)table[4 * k + 1];
        float* m = (float*)table[4 * k + 2];
        float* v = (float*)table[4 * k + 3];
        const double gv = (double)g[j] * 1.0;
        float a = g[j];
        if (adam) {
            m[j] = (float)(beta1 * (double)m[j] + (1.0 - beta1) * gv);
            a = m[j];
        }
        v[j] = (float)(beta2 * (double)v[j] + (1.0 - beta2) * (gv * gv));
        const double b = (double)v[j] * b_scale;
        const double root = eps_in_root ? sqrt(b + eps) : sqrt(b) + eps;
        const double step = lr * ((double)a * a_scale) / root;
        theta[j] = (float)((double)theta[j] - step);
    }
}

// gz_clamp on all of table's tensors in one launch: rows of one address (table_tensor).
extern "C" __global__ void gz_multi_clamp(const unsigned long long* table, int count, size_t total, float lo,
                                          float hi) {
    const unsigned long long* offsets = table + (size_t)count;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int k = table_tensor(offsets, count, i);
        float* v = (float*)table[k];
        const size_t j = i - offsets[k];
        const float x = v[j];
        v[j] = x < lo ? lo : (x > hi ? hi : x);
    }
}

// The index in columns of the entry for sample n, patch row p (c·kh·kw in the order of a
// (c, kh, kw) kernel) and output pixel l, laid out (batch, P, L) for layout 0, (batch, L,
// P) for 1 (pixel-major), (P, batch, L) for 2 (one row per patch entry across the batch).
__device__ __forceinline__ size_t column_index(size_t n, size_t p, size_t l, size_t batch, size_t patch,
                                               size_t pixels, int layout) {
    if (layout == 1) return (n * pixels + l) * patch + p;
    if (layout == 2) return (p * batch + n) * pixels + l;
    return (n * patch + p) * pixels + l;
}

// The im2col matrix of NCHW images x (n, c, h, w) for a kernel (kh, kw) at stride, zero
// padding and dilation, output (oh, ow): cols in `layout` (column_index), P = c·kh·kw,
// L = oh·ow. len = n·P·L. Each thread writes the entries of consecutive indices.
extern "C" __global__ void gz_im2col(const float* x, float* cols, size_t len, int c, int h, int w, int kh, int kw,
                                     int oh, int ow, int stride, int pad, int dilation, int layout) {
    const size_t taps = (size_t)kh * kw, patch = (size_t)c * taps, pixels = (size_t)oh * ow;
    const size_t batch = len / (patch * pixels);
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        size_t p, l, n;
        if (layout == 1) {
            p = i % patch;
            l = (i / patch) % pixels;
            n = i / patch / pixels;
        } else if (layout == 2) {
            l = i % pixels;
            n = (i / pixels) % batch;
            p = i / pixels / batch;
        } else {
            l = i % pixels;
            p = (i / pixels) % patch;
            n = i / pixels / patch;
        }
        const int ch = (int)(p / taps), ky = (int)(p % taps) / kw, kx = (int)(p % taps) % kw;
        const int iy = (int)(l / ow) * stride - pad + ky * dilation, ix = (int)(l % ow) * stride - pad + kx * dilation;
        const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
        cols[i] = inside ? x[((n * c + ch) * h + iy) * w + ix] : 0.0f;
    }
}

// The adjoint of gz_im2col in the same layout: each value of the NCHW images x (n, c, h,
// w) is the sum of the column entries unfolded from it, taps in kernel order. len = n·c·h·w.
extern "C" __global__ void gz_col2im(const float* cols, float* x, size_t len, int c, int h, int w, int kh, int kw,
                                     int oh, int ow, int stride, int pad, int dilation, int layout) {
    const size_t taps = (size_t)kh * kw, patch = (size_t)c * taps, pixels = (size_t)oh * ow;
    const size_t batch = len / ((size_t)c * h * w);
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        const int ix = (int)(i % w), iy = (int)(i / w % h);
        const size_t image = i / w / h, n = image / c, first = (image % c) * taps;  // first: the channel's first row
        float sum = 0.0f;
        for (int ky = 0; ky < kh; ++ky) {
            const int ty = iy + pad - ky * dilation;
            if (ty < 0 || ty % stride != 0 || ty / stride >= oh) continue;
            for (int kx = 0; kx < kw; ++kx) {
                const int tx = ix + pad - kx * dilation;
                if (tx < 0 || tx % stride != 0 || tx / stride >= ow) continue;
                const size_t l = (size_t)(ty / stride) * ow + tx / stride;
                sum += cols[column_index(n, first + ky * kw + kx, l, batch, patch, pixels, layout)];
            }
        }
        x[i] = sum;
    }
}
