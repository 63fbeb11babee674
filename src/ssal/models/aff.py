"""Image-domain branch of CFFN: the sequence ``(3, T, V)`` as a 3-channel T x V image.

A convolutional stem maps the image to C channels (optionally striding on T), then AFF blocks
(AFFNet, Huang et al. 2023, "Adaptive Frequency Filters As Efficient Global Token Mixers")
mix tokens globally in the frequency domain. The AFF token mixer is

    X = rfft2(x, norm="ortho")                      over (T, V), complex (N, C, T, V//2+1)
    M = softshrink(MLP_c(X), 0.01)                  block-diagonal complex MLP over channels,
                                                    softshrink on real and imaginary parts
    y = irfft2(M * X, s=(T, V), norm="ortho") + x   (the mixer keeps AFFNet's inner residual)

where ``MLP_c`` is ``Linear_c -> ReLU -> Linear_c`` with complex weights split into
``num_blocks`` channel groups (block-diagonal), stored as separate real and imaginary
parameters. A complex linear map ``(Wr + i Wi)(Xr + i Xi)`` is computed as one real 1x1
convolution on ``[Xr; Xi]`` with the weight ``[[Wr, -Wi], [Wi, Wr]]``. ReLU acts on the real and
imaginary parts separately (as in AFFNet). Each block is MetaFormer-style:

    x = x + mixer(norm1(x));   x = x + channel_mlp(norm2(x))

with BatchNorm as the norm and a 1x1-conv MLP (ratio ``mlp_ratio``, GELU). The filter works for
any (T, V), odd V included, because ``irfft2`` is given the explicit size ``s=(T, V)``.

In training on the CPU in float32 (:func:`matmul_form_applicable`) the block computes the same
arithmetic in another form. The channel MLP's 1x1 convolutions run as batched products
(``baddbmm`` with the weight broadcast over the samples: forward and backward of a (128, 32, 38,
16) block 99 -> 88 ms on the 2-core Xeon; ``torch.matmul`` and oneDNN's convolution were
slower there). The mixer, because the branch's transforms are small (e.g. 38 x 16), runs both
transforms as two real matrix products each up to :data:`MATMUL_MAX_FRAMES` frames
(:mod:`ssal.models.dft`; their backward passes are the transposed products, not autograd's
complex FFTs) and the mask's complex MLP as complex matrix products of its diagonal blocks on
the spectrum's own layout (no real/imaginary concatenation and split, no products with the
off-diagonal zeros). Values and gradients equal the modules' and the FFT form's to float
round-off (tests); benchmarks/RESULTS.md gives the time of a training step.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..skeleton import SkeletonLayout
from .base import IN_CHANNELS, JointBatchNorm, as_float, as_int, check_setting
from .dft import irfft2_by_matmul, rfft2_by_matmul
from .recompute import recompute_applicable, recomputed

#: The training form transforms by matrix products up to this many frames (T' of the branch),
#: by ``torch.fft`` beyond: the products cost O(T^2) per column. Measured forward+backward on a
#: (128, 32, T, 16) map (FFT -> products, ms): rfft2 T = 38: 14.6 -> 6.3, T = 60: 9.2 -> 10.8,
#: T = 120: 28.4 -> 40.3; irfft2 T = 38: 11.3 -> 6.6, T = 60: 13.3 -> 10.8, T = 120: 32.9 -> 39.5.
MATMUL_MAX_FRAMES = 48


def _fft_precision(x: Tensor) -> Tensor:
    """``x`` in float32 unless it is already float32/float64 (half precision FFTs are limited
    to power-of-two sizes, so mixed precision runs the filter in float32, as AFFNet does)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


class BlockComplexLinear(nn.Module):
    """Block-diagonal complex linear map over channels, on stacked ``[real; imag]`` inputs.

    Input and output are real tensors ``(N, 2*C, H, W)``: the first C channels the real part,
    the last C the imaginary part. ``C = num_blocks * block_in`` on input and
    ``num_blocks * block_out`` on output.
    """

    def __init__(self, num_blocks: int, block_in: int, block_out: int, scale: float = 0.02) -> None:
        super().__init__()
        self.weight_real = nn.Parameter(scale * torch.randn(num_blocks, block_out, block_in))
        self.weight_imag = nn.Parameter(scale * torch.randn(num_blocks, block_out, block_in))
        self.bias_real = nn.Parameter(scale * torch.randn(num_blocks * block_out))
        self.bias_imag = nn.Parameter(scale * torch.randn(num_blocks * block_out))

    def dense_weights(self) -> tuple[Tensor, Tensor]:
        """The real and imaginary parts of the complex weight matrix ``(C_out, C_in)`` (the
        blocks on its diagonal)."""
        return (torch.block_diag(*self.weight_real.unbind(0)), torch.block_diag(*self.weight_imag.unbind(0)))

    def complex_weights(self) -> tuple[Tensor, Tensor]:
        """``(weight (C_out, C_in), bias (C_out, 1))``, complex: the map as ``weight @ z + bias``
        over the channel axis of a complex ``z`` ``(N, C_in, L)`` (differentiable)."""
        return torch.complex(*self.dense_weights()), torch.complex(self.bias_real, self.bias_imag).unsqueeze(1)

    def block_weights(self) -> tuple[Tensor, Tensor]:
        """``(weight (G, out, in), bias (G, out, 1))``, complex: the G diagonal blocks, applied as
        ``weight @ z + bias`` to a complex ``z`` ``(N, G, in, L)`` (differentiable)."""
        groups = self.weight_real.shape[0]
        bias = torch.complex(self.bias_real, self.bias_imag).view(groups, -1, 1)
        return torch.complex(self.weight_real, self.weight_imag), bias

    def real_weight(self) -> Tensor:
        """The equivalent real 1x1-conv weight ``(2*C_out, 2*C_in)``."""
        wr, wi = self.dense_weights()
        return torch.cat([torch.cat([wr, -wi], dim=1), torch.cat([wi, wr], dim=1)], dim=0)

    def forward(self, z: Tensor) -> Tensor:
        """``z`` ``(N, 2*C_in, H, W)`` = [real; imag] -> ``(N, 2*C_out, H, W)``."""
        weight = self.real_weight().to(z.dtype)
        bias = torch.cat([self.bias_real, self.bias_imag]).to(z.dtype)
        return F.conv2d(z, weight[:, :, None, None], bias)


class AFFTokenMixer(nn.Module):
    """Adaptive frequency filter token mixer (AFFNet) over the (T, V) plane of ``(N, C, T, V)``.

    Args:
        channels: C; must be divisible by ``num_blocks``.
        num_blocks: channel groups of the block-diagonal complex MLP.
        hidden_factor: hidden width of the complex MLP relative to its input.
        sparsity_threshold: ``lambda`` of the softshrink applied to the frequency mask.
    """

    def __init__(
        self,
        channels: int,
        num_blocks: int = 4,
        hidden_factor: int = 1,
        sparsity_threshold: float = 0.01,
    ) -> None:
        super().__init__()
        check_setting(
            channels % num_blocks == 0, "image_blocks",
            f"image channels ({channels}) must be divisible by the number of blocks ({num_blocks})",
        )
        block = channels // num_blocks
        self.channels = channels
        self.sparsity_threshold = sparsity_threshold
        self.fc1 = BlockComplexLinear(num_blocks, block, block * hidden_factor)
        self.fc2 = BlockComplexLinear(num_blocks, block * hidden_factor, block)

    def frequency_mask(self, spectrum: Tensor) -> Tensor:
        """The complex mask ``softshrink(MLP(X))`` for a spectrum ``X`` ``(N, C, T, F)``."""
        c = self.channels
        z = torch.cat([spectrum.real, spectrum.imag], dim=1)
        h = F.relu(self.fc1(z))
        m = F.softshrink(_fft_precision(self.fc2(h)), self.sparsity_threshold)
        return torch.complex(m[:, :c], m[:, c:])

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, C, T, V) -> filtered ``x`` plus ``x``, same shape."""
        if matmul_form_applicable(self, x):
            return self._forward_by_matmul(x)
        t, v = x.shape[-2:]
        spectrum = torch.fft.rfft2(_fft_precision(x), dim=(2, 3), norm="ortho")
        filtered = spectrum * self.frequency_mask(spectrum)
        y = torch.fft.irfft2(filtered, s=(t, v), dim=(2, 3), norm="ortho")
        return y.to(x.dtype) + x

    def _forward_by_matmul(self, x: Tensor) -> Tensor:
        """:meth:`forward` in the matrix-product form (module docstring); the transforms by
        ``torch.fft`` beyond :data:`MATMUL_MAX_FRAMES` frames."""
        n, c, t, v = x.shape
        short = t <= MATMUL_MAX_FRAMES
        spectrum = rfft2_by_matmul(x) if short else torch.fft.rfft2(x, dim=(2, 3), norm="ortho")  # (N, C, T, F)
        groups = self.fc1.weight_real.shape[0]
        flat = spectrum.view(n, groups, c // groups, -1)  # the blocks of the block-diagonal map
        w1, b1 = self.fc1.block_weights()
        hidden = torch.view_as_complex(F.relu(torch.view_as_real(torch.matmul(w1, flat) + b1)))
        w2, b2 = self.fc2.block_weights()
        mask = torch.matmul(w2, hidden) + b2
        mask = torch.view_as_complex(F.softshrink(torch.view_as_real(mask), self.sparsity_threshold))
        filtered = (flat * mask).view_as(spectrum)
        if short:
            return irfft2_by_matmul(filtered, t, v) + x
        return torch.fft.irfft2(filtered, s=(t, v), dim=(2, 3), norm="ortho") + x


def _conv1x1_bmm(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """``conv`` (1x1, no groups) on ``x`` ``(N, C_in, L)`` as ``baddbmm`` with the weight expanded
    over N: ``(N, C_out, L)``."""
    n = x.shape[0]
    weight = conv.weight.view(1, conv.out_channels, conv.in_channels).expand(n, -1, -1)
    if conv.bias is None:
        return torch.bmm(weight, x)
    return torch.baddbmm(conv.bias.view(1, -1, 1), weight, x)


def matmul_form_applicable(module: nn.Module, x: Tensor) -> bool:
    """Whether ``module`` (an :class:`AFFTokenMixer`, or an :class:`AFFBlock` for its channel
    MLP) runs its matrix-product form on ``x`` (module docstring): in training mode, on the CPU,
    float32 or float64, without autocast, not inside ``torch.compile`` or a trace, where it was
    measured. Evaluation and export keep ``torch.fft`` and the convolutions."""
    return (module.training and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()
            and not torch.jit.is_tracing())


class AFFBlock(nn.Module):
    """MetaFormer block with an AFF token mixer and a 1x1-conv channel MLP."""

    def __init__(
        self,
        channels: int,
        num_blocks: int = 4,
        mlp_ratio: float = 2.0,
        sparsity_threshold: float = 0.01,
    ) -> None:
        super().__init__()
        hidden = max(1, int(round(channels * mlp_ratio)))
        self.norm1 = nn.BatchNorm2d(channels)
        self.mixer = AFFTokenMixer(channels, num_blocks, sparsity_threshold=sparsity_threshold)
        self.norm2: nn.Module = nn.BatchNorm2d(channels)  # nn.Identity once folded (ssal.models.fold)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.GELU(),
            nn.Conv2d(hidden, channels, kernel_size=1),
        )

    def forward(self, x: Tensor, recompute: bool = True) -> Tensor:
        """``x`` (N, C, T, V) -> same shape. In training the block runs as one recomputed node
        (:mod:`ssal.models.recompute`) unless ``recompute`` is false: its backward pass runs
        the forward again instead of keeping the FFT and MLP activations."""
        if recompute and recompute_applicable(self, x):
            return recomputed(self, x)
        x = x + self.mixer(self.norm1(x))
        h = self.norm2(x)
        if matmul_form_applicable(self, h) and h.is_contiguous():
            return x + self._mlp_by_bmm(h)
        return x + self.mlp(h)

    def _mlp_by_bmm(self, h: Tensor) -> Tensor:
        """``self.mlp(h)`` (1x1 conv, GELU, 1x1 conv) as batched products with the weights
        broadcast over the samples, for a contiguous ``h`` (module docstring)."""
        conv1, conv2 = cast(nn.Conv2d, self.mlp[0]), cast(nn.Conv2d, self.mlp[2])
        n, c, t, v = h.shape
        z = _conv1x1_bmm(h.view(n, c, t * v), conv1)
        return _conv1x1_bmm(F.gelu(z), conv2).view(n, c, t, v)


class AFFBackbone(nn.Module):
    """Image branch: per-joint input norm, conv stem, AFF blocks: ``(N, 3, T, V) -> (N, C, T', V)``.

    Args:
        layout: skeleton layout (V).
        channels: C, the width of the branch.
        depth: number of AFF blocks.
        num_blocks: channel groups of each block-diagonal complex MLP.
        mlp_ratio: hidden width of the channel MLP relative to C.
        stem_stride: stride of the 3x3 stem convolution on T (``T' = ceil(T / stem_stride)``).
        sparsity_threshold: softshrink ``lambda`` of the frequency masks.
    """

    def __init__(
        self,
        layout: SkeletonLayout,
        channels: int = 32,
        depth: int = 2,
        num_blocks: int = 4,
        mlp_ratio: float = 2.0,
        stem_stride: int = 2,
        sparsity_threshold: float = 0.01,
    ) -> None:
        super().__init__()
        c = as_int(channels, "image_channels")
        n_blocks = as_int(num_blocks, "image_blocks")
        d = as_int(depth, "image_depth", minimum=0)
        stride = as_int(stem_stride, "image_stem_stride")
        ratio = as_float(mlp_ratio, "image_mlp_ratio", 1e-6, 64.0)
        lam = as_float(sparsity_threshold, "image_sparsity", 0.0, 1e9)
        self.layout = layout
        self.input_norm = JointBatchNorm(IN_CHANNELS, layout.num_joints)
        self.stem = nn.Sequential(
            nn.Conv2d(IN_CHANNELS, c, kernel_size=3, stride=(stride, 1), padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*[AFFBlock(c, n_blocks, ratio, lam) for _ in range(d)])
        self.norm = nn.BatchNorm2d(c)
        self.out_channels = c

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, 3, T, V) -> (N, C, ceil(T / stem_stride), V)."""
        return self.norm(self.blocks(self.stem(self.input_norm(x))))
