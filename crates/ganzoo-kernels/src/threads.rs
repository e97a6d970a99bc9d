//! How one convolution shares rayon's threads: either each thread works through its
//! own run of sample blocks, unfolding and multiplying in its own cache with a
//! single-threaded GEMM, or — when there are fewer blocks than threads, as for a
//! batch of one — the blocks run one after another with every step threaded inside.

use rayon::prelude::*;

use crate::geometry::ConvGeometry;

/// The split of one convolution's batch over the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Samples per im2col block.
    pub chunk: usize,
    /// Samples per thread: a whole number of blocks, or the whole batch.
    pub group: usize,
    /// Whether the steps inside a block (unfolding, GEMM, reordering) are threaded.
    pub threaded: bool,
}

impl Plan {
    pub fn new(g: &ConvGeometry) -> Self {
        let threads = rayon::current_num_threads();
        let chunk = g.chunk();
        let blocks = g.batch.div_ceil(chunk);
        let threaded = blocks < threads;
        let group = if threaded { g.batch } else { blocks.div_ceil(threads) * chunk };
        Self { chunk, group, threaded }
    }

    /// Runs `f(index, chunk)` over the `len`-long chunks of `data`, on the pool when
    /// the plan threads the steps inside a block, else on the calling thread.
    pub fn for_each_chunk<T: Send>(&self, data: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
        if self.threaded {
            data.par_chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
        } else {
            data.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
        }
    }
}
