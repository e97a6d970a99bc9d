//! The instruction set the kernels run at: the widest the CPU has, or another
//! forced by `GANZOO_ISA=avx512|avx2|scalar` (or [`set`]), so every path stays tested
//! and comparable on any machine.
//!
//! The level is one process-wide setting that kernels read with [`active`] (on any
//! thread): the `f32` GEMM picks ganzoo's microkernels of that level (`sgemm`; the
//! `gemm` crate's for `f64`, the baseline and narrow products), the
//! transposes their register tiles, and the elementwise, norm and optimiser loops run
//! inside [`vectorized`], which compiles them once per level.
//! Every level computes the same functions; only the GEMM's summation order (its
//! blocking and fused multiply-adds) differs between levels.

use std::sync::atomic::{AtomicU8, Ordering};

/// An x86-64 instruction-set level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The x86-64 baseline (SSE2): what the compiler emits without AVX; the reference.
    Scalar,
    /// AVX2 + FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F (with v3 beneath it).
    Avx512,
}

/// `GANZOO_ISA` named a level this machine lacks, or no level at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsaError {
    #[error("unknown instruction set {0:?}: expected avx512, avx2 or scalar")]
    Unknown(String),
    #[error("this CPU does not support {wanted} (best: {best})")]
    Unsupported { wanted: &'static str, best: &'static str },
}

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the level.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let v3 = || {
                std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                    && std::is_x86_feature_detected!("f16c")
            };
            match self {
                Isa::Scalar => true,
                Isa::Avx2 => v3(),
                Isa::Avx512 => v3() && std::is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Scalar
        }
    }

    /// The best level this CPU supports.
    pub fn detected() -> Isa {
        Self::ALL.into_iter().rev().find(|i| i.supported()).unwrap_or(Isa::Scalar)
    }

    /// The level kernels run at unless told otherwise: the detected one. (Until
    /// ganzoo had its own `f32` GEMM, AMD CPUs ran AVX2: the `gemm` crate's AVX-512
    /// microkernels were the slower there; see `docs/performance.md`, "Instruction sets".)
    pub fn preferred() -> Isa {
        Self::detected()
    }

    /// Every level this CPU supports, lowest first.
    pub fn available() -> Vec<Isa> {
        Self::ALL.into_iter().filter(|i| i.supported()).collect()
    }

    fn from_u8(v: u8) -> Option<Isa> {
        Self::ALL.get(usize::from(v).checked_sub(1)?).copied()
    }
}

impl std::str::FromStr for Isa {
    type Err = IsaError;
    fn from_str(s: &str) -> Result<Self, IsaError> {
        Self::ALL.into_iter().find(|i| i.name() == s).ok_or_else(|| IsaError::Unknown(s.to_string()))
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// 0 until the first [`active`] or [`set`]; then 1 + the level's index in [`Isa::ALL`].
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// What `GANZOO_ISA` asks for: the [preferred](Isa::preferred) level when unset or empty.
pub fn from_env() -> Result<Isa, IsaError> {
    match std::env::var("GANZOO_ISA") {
        Ok(s) if !s.trim().is_empty() => checked(s.trim().parse()?),
        _ => Ok(Isa::preferred()),
    }
}

fn checked(isa: Isa) -> Result<Isa, IsaError> {
    if isa.supported() {
        Ok(isa)
    } else {
        Err(IsaError::Unsupported { wanted: isa.name(), best: Isa::detected().name() })
    }
}

/// Makes `isa` the level every later kernel call runs at.
pub fn set(isa: Isa) -> Result<(), IsaError> {
    checked(isa)?;
    ACTIVE.store(isa as u8 + 1, Ordering::Relaxed);
    Ok(())
}

/// The level kernels run at now: the one [`set`] chose, else `GANZOO_ISA`'s, else the
/// preferred one. A bad `GANZOO_ISA` is reported once (binaries check it with
/// [`from_env`] first) and the preferred level used.
pub fn active() -> Isa {
    if let Some(isa) = Isa::from_u8(ACTIVE.load(Ordering::Relaxed)) {
        return isa;
    }
    let isa = from_env().unwrap_or_else(|e| {
        tracing::warn!("GANZOO_ISA ignored: {e}");
        Isa::preferred()
    });
    // Only the first caller's choice sticks; later ones read it.
    let _ = ACTIVE.compare_exchange(0, isa as u8 + 1, Ordering::Relaxed, Ordering::Relaxed);
    Isa::from_u8(ACTIVE.load(Ordering::Relaxed)).unwrap_or(isa)
}

/// Runs `f` compiled for `isa`: the loops inside it (inlined) may use that level's
/// vector registers. Levels the CPU lacks fall back to the baseline.
#[inline]
pub fn vectorized<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match isa {
            // SAFETY: the CPU has AVX-512 F, AVX2, FMA and F16C (`supported`).
            Isa::Avx512 if isa.supported() => return unsafe { x86::v4(f) },
            // SAFETY: the CPU has AVX2, FMA and F16C (`supported`).
            Isa::Avx2 if isa.supported() => return unsafe { x86::v3(f) },
            _ => {}
        }
    }
    let _ = isa;
    f()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C.
    #[target_feature(enable = "avx,avx2,fma,f16c")]
    pub unsafe fn v3<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// # Safety
    /// The CPU must have AVX-512 F as well as AVX2, FMA and F16C.
    #[target_feature(enable = "avx,avx2,fma,f16c,avx512f")]
    pub unsafe fn v4<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// Runs `f` with every kernel at `isa`, one such call at a time in the process (tests
/// compare levels on the same inputs); the previous level is restored after. The level
/// is the process's: kernels other threads run meanwhile use it too.
#[doc(hidden)]
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    let _held = LEVEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    at_level(isa, f)
}

/// Held while a [`with_isa`] call runs.
static LEVEL_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// [`with_isa`]'s work, with [`LEVEL_LOCK`] held by the caller.
fn at_level<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    struct Restore(Isa);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.store(self.0 as u8 + 1, Ordering::Relaxed);
        }
    }
    let _restore = Restore(active());
    if set(isa).is_err() {
        ACTIVE.store(Isa::Scalar as u8 + 1, Ordering::Relaxed);
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
        }
        assert_eq!("sse9".parse::<Isa>(), Err(IsaError::Unknown("sse9".into())));
    }

    #[test]
    fn the_detected_level_is_supported_and_scalar_always_is() {
        assert!(Isa::detected().supported());
        assert!(Isa::Scalar.supported());
        assert!(Isa::preferred() <= Isa::detected() && Isa::preferred().supported());
        assert_eq!(Isa::available().last(), Some(&Isa::detected()));
        with_isa(Isa::Scalar, || {
            for isa in Isa::ALL {
                assert_eq!(set(isa).is_ok(), isa.supported());
            }
        });
    }

    #[test]
    fn with_isa_restores_the_level() {
        // Held throughout, so no other test's `with_isa` changes the level meanwhile.
        let _held = LEVEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let before = active();
        at_level(Isa::Scalar, || assert_eq!(active(), Isa::Scalar));
        assert_eq!(active(), before);
    }
}
