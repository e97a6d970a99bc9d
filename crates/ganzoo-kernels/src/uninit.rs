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

/// An initialised slice seen as possibly-uninitialised values, for code that only
/// writes (the same write-only helpers then serve fresh and reused buffers).
///
/// # Safety
/// Only initialised values may be written through the result: it aliases `s`, which
/// must stay initialised (`MaybeUninit::uninit()` must never be stored through it).
pub(crate) unsafe fn as_uninit<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has the size, alignment and ABI of `T`; the caller
    // keeps every value initialised.
    unsafe { &mut *(s as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// `dst = src`, initialising `dst` (the `MaybeUninit` counterpart of `copy_from_slice`).
pub(crate) fn write_slice<T: Copy>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    assert_eq!(dst.len(), src.len(), "write_slice: lengths differ");
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

/// Writes `value` to every element of `dst` and gives it back initialised (for code
/// that accumulates into a fresh buffer).
pub(crate) fn fill<T: Copy>(dst: &mut [MaybeUninit<T>], value: T) -> &mut [T] {
    for d in dst.iter_mut() {
        d.write(value);
    }
    // SAFETY: every element was written just above; `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(dst as *mut [MaybeUninit<T>] as *mut [T]) }
}
