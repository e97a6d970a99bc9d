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
        let mut data = T::pool().with(|p| p.borrow_mut().pop()).unwrap_or_default();
        if data.len() < len {
            data.resize(len, T::ZERO);
        }
        Self { data, len }
    }
}

impl<T: Element> Drop for Scratch<T> {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        T::pool().with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < KEPT {
                pool.push(data);
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
