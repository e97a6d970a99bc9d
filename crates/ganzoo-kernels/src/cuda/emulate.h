// Compiles kernels.cu as host C++ for emulate.cpp, a check of the kernels' arithmetic
// without a GPU (tests/integration/cuda_emulated.rs): each block's threads run as host
// threads, __syncthreads is a barrier, __shared__ arrays are statics (one block runs at a
// time).
#pragma once
#include <barrier>
#include <cmath>
#include <cstddef>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

struct gz_dim3 {
    unsigned x = 1, y = 1, z = 1;
};
inline thread_local gz_dim3 threadIdx, blockIdx;
inline gz_dim3 blockDim, gridDim;
inline std::barrier<>* gz_block_barrier = nullptr;

inline void __syncthreads() { gz_block_barrier->arrive_and_wait(); }
