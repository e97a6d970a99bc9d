//! Output buffers written exactly once, without the zero-fill of `vec![0; n]`
//! (which costs a pass over memory that every op's output is about to overwrite).

use std::mem::MaybeUninit;

/// A vector of `len` elements produced by `write`, which receives them
/// uninitialised.
///
/// # Safety
/// `write` must initialise every element of the slice it is given.
pub(crate) unsafe fn written<T>(len: usize, write: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    write(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: the caller guarantees that `write` initialised all `len` elements.
    unsafe { v.set_len(len) };
    v
}
