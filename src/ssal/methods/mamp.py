"""MAMP (Mao et al., "Masked Motion Predictors are Strong 3D Action Representation Learners",
ICCV 2023; ``model.learner: mamp``), following the reference ``maoyunyao/MAMP``
(``model_mamp/transformer.py``, ``feeder/feeder_ntu.py``, ``feeder/tools.py``).

One training step of :class:`MAMPLearner` on a batch ``x`` ``(N, C, T, V)``:

1. the view (the reference's feeder): a random crop of ``floor(p L)`` of the ``L`` valid frames,
   ``p ~ U(crop_ratio)``, at least ``crop_min_frames`` and at most ``L`` of them, at a uniformly
   random start, resized to the encoder's ``num_frames`` by linear interpolation with
   ``align_corners=False`` (``valid_crop_resize``, :class:`CropResize`), then a rotation by
   ``U(-rotate_max, rotate_max)`` radians about each of x, y and z (``random_rot``,
   :class:`RandomRotation`);
2. tokens: ``t_patch_size`` frames of one joint each (:func:`patchify`, token ``s V + j``);
3. motion-aware masking (``motion_aware_random_masking``): the motion of a token is the mean
   absolute difference of its coordinates from those of the same joint's previous segment (the
   first segment copies the second's); the scores ``motion / (max motion * tau + 1e-10)`` of
   each sequence go through a softmax, and the tokens whose ``log prob + Gumbel noise`` are the
   ``int(L (1 - mask_ratio))`` smallest stay visible (so moving tokens are masked more often)
   (:func:`masking_noise`, :func:`split_tokens`);
4. the encoder on the visible tokens only (:meth:`SkeletonTransformer.encode_visible`), the
   decoder on those plus a learned mask token at every hidden position, each with the decoder's
   own position embeddings (:class:`MAMPDecoder`);
5. the target is the motion of the view, ``x[t + stride] - x[t]`` per frame (zero for the last
   ``stride`` frames), cut into the same tokens and, with ``norm_target``, standardised per
   token over its ``3 t_patch_size`` values (unbiased variance, ``+ 1e-6``) (:func:`motion_target`);
   the loss is the squared error averaged over each token's values and then over the hidden
   tokens only (:func:`masked_mse`).

Every random draw of the step comes from the step's ``generator``. The reference's person axis
``M`` is absent (one skeleton per sequence in ssal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..augment.base import Augmentation, Compose, check_batch, check_int, check_non_negative, check_range, uniform
from ..augment.general import valid_lengths
from ..config.resolve import typed_section
from ..config.schema import MAMPConfig, ModelConfig
from ..errors import SsalInputError
from ..models.transformer import Block, SkeletonTransformer, init_transformer
from .learner import Learner

__all__ = [
    "CropResize", "MAMPDecoder", "MAMPLearner", "RandomRotation", "build_mamp_learner", "frame_motion",
    "mamp_summary", "masked_mse", "masking_noise", "motion_target", "patchify", "split_tokens", "token_motion",
]

Augment = Callable[..., Tensor]

#: The reference's guard in its masking scores and Gumbel noise.
_TINY = 1e-10
#: The reference's guard in the per-token standardisation of the target.
_TARGET_EPS = 1e-6


# ---------------------------------------------------------------------- the view


class CropResize(Augmentation):
    """MAMP's temporal crop and resize (``feeder/tools.py`` ``valid_crop_resize`` with a
    ``p_interval`` of two values), per sample.

    Of the ``L`` valid frames (``lengths``, default T), ``W = min(max(floor(p L), min_frames), L)``
    with ``p ~ U(crop_ratio)`` are taken from a start drawn uniformly in ``0 .. L - W``, and
    resized to ``window`` frames by linear interpolation with ``align_corners=False``: output
    frame ``i`` reads position ``max((i + 0.5) W / window - 0.5, 0)`` of the crop (PyTorch's
    ``interpolate``, which the reference calls).
    """

    uses_lengths = True

    def __init__(self, window: int, crop_ratio: Sequence[float] = (0.5, 1.0), min_frames: int = 64) -> None:
        super().__init__(p=1.0)
        self.window = check_int("window", window, minimum=1)
        self.crop_ratio = check_range("crop_ratio", crop_ratio, low=1e-6)
        self.min_frames = check_int("crop_min_frames", min_frames, minimum=1)

    def forward(self, x: Tensor, generator: torch.Generator, lengths: Tensor | None = None) -> Tensor:
        """Crop and resize every sample of ``x`` ``(N, C, T, V)`` to ``(N, C, window, V)``."""
        check_batch(x)
        n, c, t, v = x.shape
        lens = valid_lengths(lengths, n, t, x.device)
        lo, hi = self.crop_ratio
        p = uniform((n,), generator, lens.to(torch.float32), lo, hi)
        crop = torch.floor(lens * p).to(torch.long).clamp(min=self.min_frames)
        crop = torch.minimum(crop, lens)
        slack = (lens - crop).to(torch.float32)
        u = torch.rand(n, generator=generator, device=x.device)
        start = torch.minimum(torch.floor(u * (slack + 1)), slack).to(torch.long)
        # align_corners=False source positions inside each crop
        i = torch.arange(self.window, device=x.device, dtype=torch.float32).view(1, -1)
        scale = (crop.to(torch.float32) / self.window).view(-1, 1)
        src = ((i + 0.5) * scale - 0.5).clamp(min=0.0)
        i0 = src.floor().to(torch.long)
        i0 = torch.minimum(i0, crop.view(-1, 1) - 1)
        i1 = torch.minimum(i0 + 1, crop.view(-1, 1) - 1)
        frac = (src - i0.to(torch.float32)).clamp(max=1.0).to(x.dtype)
        first = start.view(-1, 1)

        def frames(index: Tensor) -> Tensor:
            return x.gather(2, (first + index)[:, None, :, None].expand(n, c, self.window, v))

        a, b = frames(i0), frames(i1)
        return a + frac[:, None, :, None] * (b - a)

    def extra_repr(self) -> str:
        return f"window={self.window}, crop_ratio={self.crop_ratio}, min_frames={self.min_frames}"


def rotation_matrices(angles: Tensor) -> Tensor:
    """MAMP's ``_rot``: ``(N, 3)`` angles about x, y, z (radians) -> ``R = Rz Ry Rx`` ``(N, 3, 3)``
    with ``Rx = [[1, 0, 0], [0, c, s], [0, -s, c]]``, ``Ry = [[c, 0, -s], [0, 1, 0], [s, 0, c]]``,
    ``Rz = [[c, s, 0], [-s, c, 0], [0, 0, 1]]``."""
    c, s = angles.cos(), angles.sin()
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def mat(*rows: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=1)

    rx = mat((one, zero, zero), (zero, c[:, 0], s[:, 0]), (zero, -s[:, 0], c[:, 0]))
    ry = mat((c[:, 1], zero, -s[:, 1]), (zero, one, zero), (s[:, 1], zero, c[:, 1]))
    rz = mat((c[:, 2], s[:, 2], zero), (-s[:, 2], c[:, 2], zero), (zero, zero, one))
    return rz @ ry @ rx


class RandomRotation(Augmentation):
    """MAMP's ``random_rot``: every sample rotated about the origin by ``R = Rz Ry Rx`` of three
    angles ``U(-max_angle, max_angle)`` radians (``theta`` 0.3), the same for all its frames."""

    def __init__(self, max_angle: float = 0.3) -> None:
        super().__init__(p=1.0)
        self.max_angle = check_non_negative("rotate_max", max_angle)

    def transform(self, x: Tensor, generator: torch.Generator) -> Tensor:
        angles = uniform((x.shape[0], 3), generator, x, -self.max_angle, self.max_angle)
        return torch.einsum("nij,njtv->nitv", rotation_matrices(angles), x)

    def extra_repr(self) -> str:
        return f"max_angle={self.max_angle}"


# ---------------------------------------------------------------------- tokens, masks, target


def patchify(x: Tensor, t_patch_size: int) -> Tensor:
    """``(N, C, T, V) -> (N, (T / t_patch_size) V, t_patch_size C)``: token ``s V + j`` holds the
    frames ``s t_patch_size ..`` of joint ``j``, frame-major (the reference's ``patchify``)."""
    n, c, t, v = x.shape
    u = t_patch_size
    if t % u:
        raise ValueError(f"{t} frames are not a multiple of t_patch_size {u}")
    return x.reshape(n, c, t // u, u, v).permute(0, 2, 4, 3, 1).reshape(n, (t // u) * v, u * c)


def frame_motion(x: Tensor, stride: int = 1) -> Tensor:
    """``x[t + stride] - x[t]`` per frame of ``(N, C, T, V)``, zero for the last ``stride``
    frames (the reference's ``extract_motion``)."""
    out = torch.zeros_like(x)
    if stride < x.shape[2]:
        out[:, :, :-stride] = x[:, :, stride:] - x[:, :, :-stride]
    return out


def token_motion(patches: Tensor) -> Tensor:
    """The motion of each token of ``patches`` ``(N, TP, V, D)`` (patchified coordinates):
    the mean over D of ``|p[s] - p[s - 1]|``, the first segment taking the second's; ``(N, TP V)``."""
    n, tp, v, _ = patches.shape
    motion = torch.zeros_like(patches)
    if tp > 1:
        motion[:, 1:] = (patches[:, 1:] - patches[:, :-1]).abs()
        motion[:, 0] = motion[:, 1]
    return motion.mean(dim=3).reshape(n, tp * v)


def masking_noise(motion: Tensor, tau: float, generator: torch.Generator | None = None) -> Tensor:
    """The sort keys of the masking ``(N, L)``: the smallest stay visible.

    ``tau > 0`` (motion-aware): ``log softmax(motion / (max motion * tau + 1e-10))`` plus Gumbel
    noise ``-log(-log(u + 1e-10) + 1e-10)``, ``u ~ U(0, 1)`` (the reference's arithmetic, with its
    ``log`` of the ``softmax``); ``tau == 0``: ``u`` itself (uniform random masking)."""
    u = torch.rand(motion.shape, generator=generator, device=motion.device)
    if tau <= 0:
        return u
    scores = motion / (motion.max(dim=-1, keepdim=True).values * tau + _TINY)
    prob = F.softmax(scores, dim=-1)
    return torch.log(prob) - torch.log(-torch.log(u + _TINY) + _TINY)


def visible_count(num_tokens: int, mask_ratio: float) -> int:
    """``int(L (1 - mask_ratio))`` (the reference's ``len_keep``), kept within ``1 .. L - 1`` so
    that some token is seen and some is predicted."""
    return min(max(int(num_tokens * (1 - mask_ratio)), 1), num_tokens - 1)


def split_tokens(noise: Tensor, mask_ratio: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(keep, restore, mask)`` from the sort keys ``noise`` ``(N, L)`` (ascending: the first
    :func:`visible_count` stay visible). ``keep`` ``(N, K)``: the visible tokens in that order;
    ``restore`` ``(N, L)``: where each token sits in ``[visible; hidden]``; ``mask`` ``(N, L)``:
    1.0 for a hidden token, 0.0 for a visible one."""
    n, length = noise.shape
    shuffle = noise.argsort(dim=1)
    restore = shuffle.argsort(dim=1)
    k = visible_count(length, mask_ratio)
    mask = (restore >= k).to(noise.dtype)
    return shuffle[:, :k], restore, mask


def motion_target(x: Tensor, t_patch_size: int, stride: int = 1, normalize: bool = True) -> Tensor:
    """The prediction target of the view ``x`` ``(N, C, T, V)``: :func:`frame_motion` cut into
    tokens (:func:`patchify`), each token standardised over its values when ``normalize``
    (``(y - mean) / sqrt(var + 1e-6)``, unbiased variance, the reference's ``norm_skes_loss``)."""
    target = patchify(frame_motion(x, stride), t_patch_size)
    if normalize:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + _TARGET_EPS) ** 0.5
    return target


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Squared error averaged over each token's values, then over the hidden tokens
    (``mask`` 1.0) only: the reference's ``forward_loss``."""
    per_token = ((pred - target) ** 2).mean(dim=-1)
    return (per_token * mask).sum() / mask.sum()


# ---------------------------------------------------------------------- decoder and learner


class MAMPDecoder(nn.Module):
    """MAMP's decoder (``forward_decoder``): the visible latents projected to ``dim``, a learned
    mask token at every hidden position, the decoder's own per-joint and per-segment position
    embeddings, ``depth`` transformer blocks, a LayerNorm and a linear map to each token's
    ``out_features`` predicted values."""

    def __init__(self, in_dim: int, dim: int, depth: int, num_heads: int, mlp_ratio: float, qkv_bias: bool,
                 num_segments: int, num_joints: int, out_features: int) -> None:
        super().__init__()
        self.num_segments, self.num_joints, self.dim = num_segments, num_joints, dim
        self.embed = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.temp_embed = nn.Parameter(torch.zeros(1, num_segments, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, num_joints, dim))
        self.pred = nn.Linear(dim, out_features)
        for p in (self.mask_token, self.temp_embed, self.pos_embed):
            nn.init.trunc_normal_(p, std=0.02)
        init_transformer(self)

    def forward(self, latent: Tensor, restore: Tensor) -> Tensor:
        """``latent`` ``(N, K, in_dim)`` of the visible tokens, ``restore`` ``(N, L)`` of
        :func:`split_tokens` -> predictions ``(N, L, out_features)`` for every token."""
        h = self.embed(latent)
        n, k, d = h.shape
        length = self.num_segments * self.num_joints
        h = torch.cat([h, self.mask_token.to(h.dtype).expand(n, length - k, d)], dim=1)
        h = h.gather(1, restore.unsqueeze(-1).expand(-1, -1, d))
        h = (h.view(n, self.num_segments, self.num_joints, d) + self.pos_embed + self.temp_embed).view(n, length, d)
        for block in self.blocks:
            h = block(h)
        return self.pred(self.norm(h))


class MAMPLearner(Learner):
    """MAMP's masked motion predictor (module docstring).

    The learner contract: the evaluated encoder is the transformer ``encoder``; the optimiser
    trains it and the decoder; there is no state besides them.

    Args:
        encoder: the :class:`~ssal.models.transformer.SkeletonTransformer`.
        view: the augmentation ``view(x, generator[, lengths])`` giving ``num_frames`` frames,
            or ``None`` (the batch itself, resampled by the encoder).
        The keywords are those of :class:`~ssal.config.schema.MAMPConfig` (its defaults).
    """

    def __init__(
        self, encoder: SkeletonTransformer, view: nn.Module | Augment | None = None, *,
        mask_ratio: float = MAMPConfig.mask_ratio, motion_aware_tau: float = MAMPConfig.motion_aware_tau,
        motion_stride: int = MAMPConfig.motion_stride, decoder_dim: int = MAMPConfig.decoder_dim,
        decoder_depth: int = MAMPConfig.decoder_depth, decoder_heads: int = MAMPConfig.decoder_heads,
        norm_target: bool = MAMPConfig.norm_target,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, SkeletonTransformer):
            raise SsalInputError(None, "learner mamp needs the transformer encoder (model.encoder.name: "
                                       f"transformer), got {type(encoder).__name__}")
        if decoder_dim % decoder_heads:
            raise SsalInputError(None, f"setting 'model.mamp.decoder_heads': {decoder_heads} heads must divide "
                                       f"decoder_dim {decoder_dim}")
        self.encoder = encoder
        self.view = view
        self.mask_ratio = float(mask_ratio)
        self.motion_aware_tau = float(motion_aware_tau)
        self.motion_stride = int(motion_stride)
        self.norm_target = bool(norm_target)
        self.decoder = MAMPDecoder(
            encoder.dim, decoder_dim, decoder_depth, decoder_heads, encoder.mlp_ratio, encoder.qkv_bias,
            encoder.num_segments, encoder.layout.num_joints, 3 * encoder.t_patch_size,
        )

    @property
    def evaluated_encoder(self) -> nn.Module:
        """The transformer encoder."""
        return self.encoder

    def compile_encoders(self, backend: str) -> None:
        """``torch.compile`` the encoder's blocks (``encode``, used by pretraining and by
        ``feature_maps``) and the decoder's ``forward`` in place (instance attributes)."""
        encoder = cast(Any, self.encoder)
        encoder.encode = torch.compile(encoder.encode, backend=backend)
        decoder = cast(Any, self.decoder)
        decoder.forward = torch.compile(decoder.forward, backend=backend)

    def mask(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(keep, restore, mask)`` of the view ``x`` ``(N, C, num_frames, V)`` (module docstring,
        step 3)."""
        u = self.encoder.t_patch_size
        patches = patchify(x, u).view(x.shape[0], self.encoder.num_segments, x.shape[3], 3 * u)
        noise = masking_noise(token_motion(patches), self.motion_aware_tau, generator)
        return split_tokens(noise, self.mask_ratio)

    def training_step(self, x: Tensor, generator: torch.Generator | None = None,
                      lengths: Tensor | None = None) -> dict[str, Tensor]:
        """One MAMP step (module docstring). Returns ``loss`` and its detached copy ``mse``
        (the masked motion error)."""
        extra = () if lengths is None else (lengths,)
        view = self.view(x, generator, *extra) if self.view is not None else x
        view = self.encoder.resample(view)  # the view's frames already: unchanged
        keep, restore, mask = self.mask(view, generator)
        pred = self.decoder(self.encoder.encode_visible(view, keep), restore)
        with torch.autocast(device_type=x.device.type, enabled=False):
            target = motion_target(view.float(), self.encoder.t_patch_size, self.motion_stride, self.norm_target)
            loss = masked_mse(pred.float(), target, mask.float())
        return {"loss": loss, "mse": loss.detach()}


def build_mamp_learner(cfg: ModelConfig | Mapping[str, Any], layout: Any, where: str | None = None) -> MAMPLearner:
    """A :class:`MAMPLearner` from a ``model:`` section (the ``mamp`` entry of
    :data:`ssal.methods.learners.LEARNERS`): its encoder (a transformer), its view
    (:class:`CropResize` to the encoder's ``num_frames`` and, with ``rotate``,
    :class:`RandomRotation`) and ``model.mamp``."""
    from ..models import build_encoder
    from ..skeleton import get_layout

    settings = typed_section(ModelConfig, cfg, where, "model.")
    layout = get_layout(layout)
    if settings.encoder.name != "transformer":
        raise SsalInputError(where, "setting 'model.encoder.name': learner mamp needs transformer, "
                                    f"got {settings.encoder.name!r}")
    encoder = cast(SkeletonTransformer, build_encoder(settings.encoder, layout))
    m = settings.mamp
    ops: list[nn.Module] = [CropResize(encoder.num_frames, tuple(m.crop_ratio), m.crop_min_frames)]
    if m.rotate:
        ops.append(RandomRotation(m.rotate_max))
    try:
        return MAMPLearner(
            encoder, Compose(ops), mask_ratio=m.mask_ratio, motion_aware_tau=m.motion_aware_tau,
            motion_stride=m.motion_stride, decoder_dim=m.decoder_dim, decoder_depth=m.decoder_depth,
            decoder_heads=m.decoder_heads, norm_target=m.norm_target,
        )
    except SsalInputError as exc:
        raise SsalInputError(where, exc.problem) from None


def mamp_summary(model: Mapping[str, Any]) -> str:
    """What a report says about a MAMP learner's settings (``model:`` as a mapping)."""
    m = model["mamp"]
    return f"masked motion prediction, {m['mask_ratio']:.0%} masked, decoder {m['decoder_dim']} x {m['decoder_depth']}"
