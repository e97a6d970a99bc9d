//! Working buffers reused from call to call on each thread. A training step runs the
//! same convolutions over and over; taking their buffers from a small per-thread pool
//! instead of fresh zeroed allocations saves a pass of zeroing (or page faults) over
//! about a mebibyte per call.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use crate::gemm::Element;

/// Buffers a thread keeps for reuse; more than this are freed.
const KEPT: usize = 4;

thread_local! {
    pub(crate) static F32_POOL: Pool<f32> = const { RefCell::new(Vec::new()) };
    pub(crate) static F64_POOL: Pool<f64> = const { RefCell::new(Vec::new()) };
}

/// One thread's spare buffers of one element type.
pub type Pool<T> = RefCell<Vec<Vec<T>>>;

/// A buffer of at least `len` values with unspecified contents (whatever the last
/// user left): callers write every value they later read. Goes back to the pool of
/// the thread that drops it.
pub struct Scratch<T: Element> {
    data: Vec<T>,
    len: usize,
}

impl<T: Element> Scratch<T> {
    pub fn take(len: usize) -> Self {
        if len == 0 {
            return Self { data: Vec::new(), len };
        }
        let mut data = T::pool().with(|p| best_fit(&mut p.borrow_mut(), len)).unwrap_or_default();
        if data.len() < len {
            data.resize(len, T::ZERO);
        }
        Self { data, len }
    }
}

/// Takes the shortest spare buffer of at least `len` values, else the longest (to be
/// grown): a convolution takes several buffers of different sizes at once, and taking
/// whichever came back last made each grow, zero-filling its new part, call after call.
fn best_fit<T>(pool: &mut Vec<Vec<T>>, len: usize) -> Option<Vec<T>> {
    let long_enough = (0..pool.len()).filter(|&i| pool[i].len() >= len).min_by_key(|&i| pool[i].len());
    let index = long_enough.or_else(|| (0..pool.len()).max_by_key(|&i| pool[i].len()))?;
    Some(pool.swap_remove(index))
}

impl<T: Element> Drop for Scratch<T> {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        if data.capacity() == 0 {
            return;
        }
        T::pool().with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < KEPT {
                pool.push(data);
            } else if let Some(smallest) = pool.iter_mut().min_by_key(|b| b.len()).filter(|b| b.len() < data.len()) {
                *smallest = data;
            }
        });
    }
}

impl<T: Element> Deref for Scratch<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.data[..self.len]
    }
}

impl<T: Element> DerefMut for Scratch<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.data[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_shortest_buffer_that_fits_else_the_longest() {
        let lens = |pool: &Vec<Vec<u8>>| pool.iter().map(Vec::len).collect::<Vec<_>>();
        let mut pool = vec![vec![0u8; 10], vec![0; 100], vec![0; 50]];
        assert_eq!(best_fit(&mut pool, 40).map(|b| b.len()), Some(50));
        assert_eq!(lens(&pool), [10, 100]);
        assert_eq!(best_fit(&mut pool, 200).map(|b| b.len()), Some(100));
        assert_eq!(best_fit(&mut pool, 5).map(|b| b.len()), Some(10));
        assert_eq!(best_fit(&mut pool, 5), None);
    }
}
