"""MAMP's skeleton transformer (Mao et al., ICCV 2023; reference ``maoyunyao/MAMP``
``model/transformer.py``, the encoder half of ``model_mamp/transformer.py``).

Tokens are joint x time segments: the ``t_patch_size`` frames of one joint are embedded by one
linear map of their ``3 * t_patch_size`` coordinates (the reference's ``SkeleEmbed``: a
convolution whose kernel equals its stride), a learned per-joint (spatial) and a learned
per-segment (temporal) position embedding are added, and ``depth`` pre-norm transformer blocks
and a final LayerNorm follow. The evaluated feature is the average of the normed tokens over
segments and joints (``ActionHeadLinprobe``: norm, then mean over persons, time and joints).

The reference asserts that its input has exactly ``num_frames`` frames (its feeder crops and
resizes every sequence to that window). Here every input of any length T is first resampled to
``num_frames`` frames (:func:`ssal.models.base.resize_time`'s linear interpolation with the first
and last frames kept), so evaluation, export and ``ssal predict`` accept any clip length; a
batch already at ``num_frames`` frames passes unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.schema import TransformerConfig as _C  # the defaults
from ..skeleton import SkeletonLayout
from .base import Encoder, as_float, as_int, check_setting, global_pool

__all__ = ["Attention", "Block", "SkeletonTransformer", "TokenEmbed", "init_transformer"]


class Attention(nn.Module):
    """Multi-head self-attention with plain matmuls (exports to any ONNX opset)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, L, dim) -> (B, L, dim)``."""
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                       # (B, H, L, d_h)
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))`` (GELU MLP)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool = True) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(OrderedDict(fc1=nn.Linear(dim, hidden), act=nn.GELU(), fc2=nn.Linear(hidden, dim)))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TokenEmbed(nn.Module):
    """One token per joint and ``t_patch_size`` frames: ``(N, 3, T, V) -> (N, dim, T / t_patch_size, V)``
    by a linear map of the segment's ``3 * t_patch_size`` coordinates (a convolution whose kernel
    is its stride, the reference's ``SkeleEmbed.proj``, PyTorch's default initialisation)."""

    def __init__(self, dim: int, t_patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=(t_patch_size, 1), stride=(t_patch_size, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


def init_transformer(module: nn.Module) -> None:
    """The reference's ``_init_weights`` applied to every submodule: Xavier-uniform weights and
    zero biases of every ``nn.Linear``, unit/zero LayerNorms (convolutions keep PyTorch's)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SkeletonTransformer(Encoder):
    """MAMP's encoder (module docstring): ``(N, 3, T, V) -> (N, out_dim)``.

    ``feature_maps`` returns ``[map]``, ``map`` the normed tokens ``(N, dim, num_frames //
    t_patch_size, V)``; ``fuse`` averages them over segments and joints (then the optional
    ``fc``). :meth:`encode_visible` is the masked-autoencoder path of pretraining: all tokens are
    embedded, only the kept ones go through the blocks.

    Args:
        layout: the skeleton layout (V joints, one spatial position embedding each).
        dim, depth, num_heads, mlp_ratio, qkv_bias: the transformer's sizes.
        num_frames: frames the encoder sees (every input is resampled to it).
        t_patch_size: frames per token; must divide ``num_frames``.
        out_dim: ``None`` (the ``dim``-d pooled feature) or the size of an ``fc`` on it.
    """

    def __init__(
        self,
        layout: SkeletonLayout,
        dim: int = _C.dim,
        depth: int = _C.depth,
        num_heads: int = _C.num_heads,
        mlp_ratio: float = _C.mlp_ratio,
        num_frames: int = _C.num_frames,
        t_patch_size: int = _C.t_patch_size,
        qkv_bias: bool = _C.qkv_bias,
        out_dim: int | None = _C.out_dim,
    ) -> None:
        super().__init__()
        self._settings: dict[str, Any] = {
            "dim": dim, "depth": depth, "num_heads": num_heads, "mlp_ratio": mlp_ratio,
            "num_frames": num_frames, "t_patch_size": t_patch_size, "qkv_bias": qkv_bias, "out_dim": out_dim,
        }
        self.layout = layout
        self.dim = as_int(dim, "dim")
        self.num_heads = as_int(num_heads, "num_heads")
        check_setting(self.dim % self.num_heads == 0, "num_heads", f"{num_heads} heads must divide dim {dim}")
        depth = as_int(depth, "depth")
        mlp_ratio = as_float(mlp_ratio, "mlp_ratio", 1e-6, 1e6)
        check_setting(int(self.dim * mlp_ratio) >= 1, "mlp_ratio", f"dim * mlp_ratio must be at least 1, got {mlp_ratio}")
        self.num_frames = as_int(num_frames, "num_frames")
        self.t_patch_size = as_int(t_patch_size, "t_patch_size")
        check_setting(self.num_frames % self.t_patch_size == 0, "num_frames",
                      f"{num_frames} frames must be a multiple of t_patch_size {t_patch_size}")
        check_setting(isinstance(qkv_bias, bool), "qkv_bias", f"expected true or false, got {qkv_bias!r}")
        self.num_segments = self.num_frames // self.t_patch_size
        self.mlp_ratio, self.qkv_bias = mlp_ratio, bool(qkv_bias)
        v = layout.num_joints

        self.joints_embed = TokenEmbed(self.dim, self.t_patch_size)
        self.blocks = nn.ModuleList(Block(self.dim, self.num_heads, mlp_ratio, qkv_bias) for _ in range(depth))
        self.norm = nn.LayerNorm(self.dim)
        # The reference's shapes: per segment (1, TP, 1, dim), per joint (1, 1, V, dim).
        self.temp_embed = nn.Parameter(torch.zeros(1, self.num_segments, 1, self.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, v, self.dim))
        nn.init.trunc_normal_(self.temp_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        init_transformer(self)

        self.fc: nn.Module
        if out_dim is None:
            self.out_dim = self.dim
            self.fc = nn.Identity()
        else:
            self.out_dim = as_int(out_dim, "out_dim")
            self.fc = nn.Linear(self.dim, self.out_dim)

    # ------------------------------------------------------------------ tokens
    @property
    def num_tokens(self) -> int:
        """Tokens of one sequence: ``num_frames // t_patch_size`` segments x V joints."""
        return self.num_segments * self.layout.num_joints

    def resample(self, x: Tensor) -> Tensor:
        """``x`` ``(N, 3, T, V)`` at ``num_frames`` frames: :func:`~ssal.models.base.resize_time`'s
        arithmetic, written without its shortcuts (``T == num_frames``, ``T == 1``), which give
        the same values, so that an export traced at one length runs at every length."""
        n, c, t, v = x.shape
        flat = x.permute(0, 1, 3, 2).reshape(n, c * v, t)
        out = F.interpolate(flat, size=self.num_frames, mode="linear", align_corners=True)
        return out.view(n, c, v, self.num_frames).permute(0, 1, 3, 2)

    def embed(self, x: Tensor) -> Tensor:
        """Every token of ``x`` ``(N, 3, T, V)`` with its position embeddings: ``(N, L, dim)``,
        token ``s * V + j`` for segment ``s`` and joint ``j`` (the reference's order).
        ``x`` is resampled to ``num_frames`` frames first (module docstring)."""
        x = self.resample(x)
        tokens = self.joints_embed(x).permute(0, 2, 3, 1)           # (N, TP, V, dim)
        tokens = tokens + self.pos_embed + self.temp_embed
        return tokens.reshape(x.shape[0], -1, self.dim)

    def encode(self, tokens: Tensor) -> Tensor:
        """The blocks and the final norm on a token sequence ``(N, L', dim)`` (any subset)."""
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def encode_visible(self, x: Tensor, keep: Tensor) -> Tensor:
        """The encoder on the kept tokens only (MAE-style pretraining, the reference's
        ``forward_encoder`` after its masking): all tokens of ``x`` are embedded with their
        position embeddings, the ``keep`` ``(N, K)`` indices into the ``L`` tokens are taken
        (in that order) and go through the blocks and the norm: ``(N, K, dim)``."""
        self.check_input(x)
        tokens = self.embed(x)
        kept = tokens.gather(1, keep.unsqueeze(-1).expand(-1, -1, self.dim))
        return self.encode(kept)

    # ------------------------------------------------------------------ encoder contract
    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """``[normed tokens (N, dim, num_frames // t_patch_size, V)]``."""
        self.check_input(x)
        out = self.encode(self.embed(x))
        n, v = x.shape[0], self.layout.num_joints
        return [out.view(n, self.num_segments, v, self.dim).permute(0, 3, 1, 2)]

    def fuse(self, maps: list[Tensor]) -> Tensor:
        """Mean of the tokens over segments and joints, then ``fc`` (if any): ``(N, out_dim)``."""
        if len(maps) != 1:
            raise ValueError(f"SkeletonTransformer.fuse expects 1 feature map, got {len(maps)}")
        return self.fc(global_pool(maps[0]))
