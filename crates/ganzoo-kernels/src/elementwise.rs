//! One pass over two equally long slices, `out_i = f(a_i, b_i)`, in parallel
//! chunks, the output written once (never zero-filled first): the shape of the
//! activations' forward and backward kernels.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Elements per parallel task.
const GRAIN: usize = 1 << 14;

/// `f` must be a plain computation on two values (a closure capturing only `Copy`
/// values, such as a slope): it is copied into each chunk's loop and inlined there,
/// so a branch-free `f` keeps the loop vectorised.
pub(crate) fn zip_map<T, F>(a: &[T], b: &[T], f: F) -> Vec<T>
where
    T: Copy + Send + Sync,
    F: Fn(T, T) -> T + Copy + Send + Sync,
{
    assert_eq!(a.len(), b.len(), "elementwise: operand lengths differ");
    // SAFETY: `out`, `a` and `b` have the same length and split into the same chunks,
    // paired one to one, so every element of `out` is written.
    unsafe {
        let isa = crate::isa::active();
        crate::uninit::written(a.len(), |out| {
            out.par_chunks_mut(GRAIN)
                .zip(a.par_chunks(GRAIN).zip(b.par_chunks(GRAIN)))
                .for_each(move |(o, (a, b))| crate::isa::vectorized(isa, || fill(o, a, b, f)));
        })
    }
}

#[inline(always)]
fn fill<T: Copy, F: Fn(T, T) -> T>(out: &mut [MaybeUninit<T>], a: &[T], b: &[T], f: F) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        o.write(f(a, b));
    }
}
