//! Where the channels of an image tensor lie: NCHW (Candle's convention) or NHWC
//! (channels innermost, the order the convolution kernels unfold images in).

/// Where the channels of an image tensor lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageLayout {
    /// `(N, C, H, W)`: Candle's and PyTorch's convention.
    #[default]
    Nchw,
    /// `(N, H, W, C)`: channels innermost, the order the kernels unfold images in. A
    /// network that keeps its activations this way between layers skips the
    /// transposes into and out of it at every convolution.
    Nhwc,
}

impl ImageLayout {
    /// `[N, C, H, W]` of a tensor's dimensions in this layout.
    pub fn to_nchw(self, dims: [usize; 4]) -> [usize; 4] {
        let [a, b, c, d] = dims;
        match self {
            Self::Nchw => dims,
            Self::Nhwc => [a, d, b, c],
        }
    }

    /// The dimensions in this layout of an image `[N, C, H, W]`.
    pub fn from_nchw(self, [n, c, h, w]: [usize; 4]) -> [usize; 4] {
        match self {
            Self::Nchw => [n, c, h, w],
            Self::Nhwc => [n, h, w, c],
        }
    }

    /// The axis of the height (that of the width follows it).
    pub fn height_axis(self) -> usize {
        match self {
            Self::Nchw => 2,
            Self::Nhwc => 1,
        }
    }

    /// The axis of the channels.
    pub fn channel_axis(self) -> usize {
        match self {
            Self::Nchw => 1,
            Self::Nhwc => 3,
        }
    }
}
