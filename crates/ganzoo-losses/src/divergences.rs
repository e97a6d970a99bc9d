//! Closed-form distances between the WGAN paper's parallel lines (example 1):
//! `P₀ = (0, Z)` and `P_θ = (θ, Z)`, `Z ~ U[0, 1]`.
//!
//! - `W(P₀, P_θ) = |θ|`
//! - `JS(P₀, P_θ) = log 2` if `θ ≠ 0`, else 0
//! - `KL(P_θ ‖ P₀) = KL(P₀ ‖ P_θ) = +∞` if `θ ≠ 0`, else 0
//! - `δ(P₀, P_θ) = 1` (total variation) if `θ ≠ 0`, else 0
//!
//! Only the Wasserstein distance is continuous in θ: the paper's argument for it.

/// The four distances between `P₀` and `P_θ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParallelLines {
    pub wasserstein: f64,
    pub jensen_shannon: f64,
    pub kullback_leibler: f64,
    pub total_variation: f64,
}

impl ParallelLines {
    pub fn at(theta: f64) -> Self {
        let apart = theta != 0.0;
        Self {
            wasserstein: theta.abs(),
            jensen_shannon: if apart { std::f64::consts::LN_2 } else { 0.0 },
            kullback_leibler: if apart { f64::INFINITY } else { 0.0 },
            total_variation: if apart { 1.0 } else { 0.0 },
        }
    }
}
