// Runs one of kernels.cu's kernels on the host (compiled with emulate.h: `c++ -std=c++20
// -pthread -ffp-contract=off -include emulate.h emulate.cpp`), on raw
// little-endian f32 files in a directory, for tests/integration/cuda_emulated.rs:
//
//   emulate DIR batch_norm N C PLANE EPS SLOPE ACTIVATE [KEEP UNBIAS]  x gamma beta dy
//     [running_mean running_var] → stats y grad [running_mean running_var]
//   emulate DIR layer_norm B N EPS          x gamma beta dy g h → y affine q second
//   emulate DIR leaky_relu LEN SLOPE                     x g → out
//   emulate DIR moving_average LEN BETA SCALE SQUARE     d g → d
//   emulate DIR scaled_step LEN LR A_SCALE B_SCALE EPS EPS_IN_ROOT  theta a b → theta
//   emulate DIR clamp LEN LO HI                          v → v
//   emulate DIR multi_step COUNT LEN... LR BETA1 BETA2 A_SCALE B_SCALE EPS EPS_IN_ROOT ADAM
//     theta g m v → theta m v (each file the COUNT tensors' concatenation; the kernel
//     reaches each tensor, a separate allocation here, through its address table)
//   emulate DIR multi_clamp COUNT LEN... LO HI           v → v (the same way)
//   emulate DIR columns N C H W KH KW OH OW STRIDE PAD DILATION  x c0 c1 c2 → cols0 cols1 cols2
//     folded0 folded1 folded2 (colsK: im2col of x in layout K — (N, P, L), (N, L, P),
//     (P, N, L); foldedK: col2im of cK, columns in layout K)
//
// Launch shapes as cuda/mod.rs's: per-channel and per-sample kernels one block of GZ_BLOCK
// threads per channel or sample; elementwise kernels two blocks of 256 threads here, so
// that they stride.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "kernels.cu"

static std::string dir;

static std::vector<float> load(const char* name, size_t len) {
    std::ifstream in(dir + "/" + name + ".f32", std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() != len * sizeof(float)) {
        std::fprintf(stderr, "%s.f32: %zu bytes, expected %zu\n", name, bytes.size(), len * sizeof(float));
        std::exit(2);
    }
    std::vector<float> v(len);
    std::memcpy(v.data(), bytes.data(), bytes.size());
    return v;
}

static void save(const char* name, const std::vector<float>& v) {
    std::ofstream out(dir + "/" + name + ".f32", std::ios::binary);
    out.write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Runs `kernel` over `grid` blocks of `block` threads: as host threads meeting at a
// barrier where the kernel synchronises, else one after another.
template <class F>
static void launch(unsigned grid, unsigned block, bool synchronises, F kernel) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; ++b) {
        if (!synchronises) {
            for (unsigned t = 0; t < block; ++t) {
                blockIdx = {b, 1, 1};
                threadIdx = {t, 1, 1};
                kernel();
            }
            continue;
        }
        std::barrier<> barrier(block);
        gz_block_barrier = &barrier;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block; ++t) {
            threads.emplace_back([=] {
                blockIdx = {b, 1, 1};
                threadIdx = {t, 1, 1};
                kernel();
            });
        }
        for (auto& thread : threads) thread.join();
    }
}

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: emulate DIR KERNEL ARGS...\n");
        return 2;
    }
    dir = argv[1];
    const std::string kernel = argv[2];
    auto arg = [&](int i) -> const char* {
        if (i >= argc) {
            std::fprintf(stderr, "%s: missing argument %d\n", kernel.c_str(), i);
            std::exit(2);
        }
        return argv[i];
    };
    const unsigned EW_GRID = 2, EW_BLOCK = 256;
    if (kernel == "batch_norm") {
        const int n = std::atoi(arg(3)), c = std::atoi(arg(4)), plane = std::atoi(arg(5));
        const double eps = std::atof(arg(6));
        const float slope = (float)std::atof(arg(7));
        const int activate = std::atoi(arg(8));
        const size_t len = (size_t)n * c * plane;
        auto x = load("x", len), gamma = load("gamma", c), beta = load("beta", c), dy = load("dy", len);
        std::vector<float> stats(4 * c), y(len), grad(len + 2 * c);
        const bool update = argc > 10;
        std::vector<float> rm, rv;
        double keep = 0.0, unbias = 0.0;
        if (update) {
            keep = std::atof(arg(9));
            unbias = std::atof(arg(10));
            rm = load("running_mean", c);
            rv = load("running_var", c);
        }
        const unsigned long long rma = update ? (unsigned long long)rm.data() : 0,
                                 rva = update ? (unsigned long long)rv.data() : 0;
        launch(c, GZ_BLOCK, true, [&] {
            gz_bn_statistics(x.data(), gamma.data(), beta.data(), stats.data(), n, c, plane, eps, rma, rva, keep,
                             unbias);
        });
        launch(EW_GRID, EW_BLOCK, false, [&] { gz_bn_forward(x.data(), stats.data(), y.data(), len, c, plane, slope, activate); });
        launch(c, GZ_BLOCK, true, [&] {
            gz_bn_backward(x.data(), dy.data(), y.data(), gamma.data(), stats.data(), grad.data(), n, c, plane, eps, slope,
                           activate);
        });
        save("stats", stats);
        save("y", y);
        save("grad", grad);
        if (update) {
            save("running_mean", rm);
            save("running_var", rv);
        }
    } else if (kernel == "layer_norm") {
        const int b = std::atoi(arg(3));
        const size_t n = std::strtoull(arg(4), nullptr, 10);
        const double eps = std::atof(arg(5));
        const size_t len = b * n;
        auto x = load("x", len), gamma = load("gamma", n), beta = load("beta", n), dy = load("dy", len),
             g = load("g", len), h = load("h", len);
        std::vector<float> y(len), affine(2 * n), q(len), second(len);
        std::vector<double> moments(2 * b);
        launch(b, GZ_BLOCK, true, [&] { gz_ln_forward(x.data(), gamma.data(), beta.data(), y.data(), n, eps); });
        launch(b, GZ_BLOCK, true, [&] { gz_ln_moments(x.data(), moments.data(), n, eps); });
        launch(EW_GRID, EW_BLOCK, false,
               [&] { gz_ln_affine_grad(x.data(), dy.data(), moments.data(), affine.data(), b, n); });
        launch(b, GZ_BLOCK, true, [&] { gz_ln_input_grad(x.data(), g.data(), q.data(), n, eps); });
        launch(b, GZ_BLOCK, true, [&] { gz_ln_second(x.data(), g.data(), h.data(), second.data(), n, eps); });
        save("y", y);
        save("affine", affine);
        save("q", q);
        save("second", second);
    } else if (kernel == "leaky_relu") {
        const size_t len = std::strtoull(arg(3), nullptr, 10);
        const float slope = (float)std::atof(arg(4));
        auto x = load("x", len), g = load("g", len);
        std::vector<float> out(len);
        launch(EW_GRID, EW_BLOCK, false, [&] { gz_leaky_relu_mask(x.data(), g.data(), out.data(), len, slope); });
        save("out", out);
    } else if (kernel == "moving_average") {
        const size_t len = std::strtoull(arg(3), nullptr, 10);
        const double beta = std::atof(arg(4)), scale = std::atof(arg(5));
        const int square = std::atoi(arg(6));
        auto d = load("d", len), g = load("g", len);
        launch(EW_GRID, EW_BLOCK, false, [&] { gz_moving_average(d.data(), g.data(), len, beta, scale, square); });
        save("d", d);
    } else if (kernel == "scaled_step") {
        const size_t len = std::strtoull(arg(3), nullptr, 10);
        const double lr = std::atof(arg(4)), a_scale = std::atof(arg(5)), b_scale = std::atof(arg(6)),
                     eps = std::atof(arg(7));
        const int eps_in_root = std::atoi(arg(8));
        auto theta = load("theta", len), a = load("a", len), b = load("b", len);
        launch(EW_GRID, EW_BLOCK, false,
               [&] { gz_scaled_step(theta.data(), a.data(), b.data(), len, lr, a_scale, b_scale, eps, eps_in_root); });
        save("theta", theta);
    } else if (kernel == "clamp") {
        const size_t len = std::strtoull(arg(3), nullptr, 10);
        const float lo = (float)std::atof(arg(4)), hi = (float)std::atof(arg(5));
        auto v = load("v", len);
        launch(EW_GRID, EW_BLOCK, false, [&] { gz_clamp(v.data(), len, lo, hi); });
        save("v", v);
    } else if (kernel == "multi_step" || kernel == "multi_clamp") {
        const int count = std::atoi(arg(3));
        std::vector<size_t> lens(count);
        std::vector<unsigned long long> offsets{0};
        for (int k = 0; k < count; ++k) {
            lens[k] = std::strtoull(arg(4 + k), nullptr, 10);
            offsets.push_back(offsets.back() + lens[k]);
        }
        const size_t total = offsets.back();
        const int next = 4 + count;
        const bool step = kernel == "multi_step";
        const std::vector<const char*> names = step ? std::vector<const char*>{"theta", "g", "m", "v"}
                                                    : std::vector<const char*>{"v"};
        // One allocation per tensor and role, as on a GPU, and the table of their addresses.
        std::vector<std::vector<std::vector<float>>> parts(names.size());
        std::vector<unsigned long long> table(names.size() * count);
        for (size_t r = 0; r < names.size(); ++r) {
            const auto all = load(names[r], total);
            for (int k = 0; k < count; ++k) {
                parts[r].emplace_back(all.begin() + offsets[k], all.begin() + offsets[k + 1]);
                table[names.size() * k + r] = (unsigned long long)parts[r][k].data();
            }
        }
        table.insert(table.end(), offsets.begin(), offsets.end());
        if (step) {
            double d[6];
            for (int i = 0; i < 6; ++i) d[i] = std::atof(arg(next + i));
            const int eps_in_root = std::atoi(arg(next + 6)), adam = std::atoi(arg(next + 7));
            launch(EW_GRID, EW_BLOCK, false, [&] {
                gz_multi_step(table.data(), count, total, d[0], d[1], d[2], d[3], d[4], d[5], eps_in_root, adam);
            });
        } else {
            const float lo = (float)std::atof(arg(next)), hi = (float)std::atof(arg(next + 1));
            launch(EW_GRID, EW_BLOCK, false, [&] { gz_multi_clamp(table.data(), count, total, lo, hi); });
        }
        for (size_t r = 0; r < names.size(); ++r) {
            std::vector<float> all;
            for (const auto& part : parts[r]) all.insert(all.end(), part.begin(), part.end());
            save(names[r], all);
        }
    } else if (kernel == "columns") {
        int v[11];
        for (int i = 0; i < 11; ++i) v[i] = std::atoi(arg(3 + i));
        const auto [n, c, h, w, kh, kw, oh, ow, stride, pad, dilation] = v;
        const size_t image = (size_t)n * c * h * w, columns = (size_t)n * c * kh * kw * oh * ow;
        auto x = load("x", image);
        for (int layout = 0; layout < 3; ++layout) {
            const std::string k = std::to_string(layout);
            auto cin = load(("c" + k).c_str(), columns);
            std::vector<float> cols(columns), folded(image);
            launch(EW_GRID, EW_BLOCK, false, [&] {
                gz_im2col(x.data(), cols.data(), columns, c, h, w, kh, kw, oh, ow, stride, pad, dilation, layout);
            });
            launch(EW_GRID, EW_BLOCK, false, [&] {
                gz_col2im(cin.data(), folded.data(), image, c, h, w, kh, kw, oh, ow, stride, pad, dilation, layout);
            });
            save(("cols" + k).c_str(), cols);
            save(("folded" + k).c_str(), folded);
        }
    } else {
        std::fprintf(stderr, "unknown kernel %s\n", kernel.c_str());
        return 2;
    }
    return 0;
}
