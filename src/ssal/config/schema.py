"""The run configuration as typed dataclass schemas: the one source of every default.

A run is configured by one :class:`Config`: ``method``, ``seed`` and the sections ``data``,
``train``, ``model`` (the learner: encoder, augmentation, MoCo and loss settings), ``eval``
(the protocols' schedules, label fractions and seeds) and ``run``.
:func:`ssal.config.resolve_config` merges the method preset (``ssal/config/methods/*.yaml``),
an optional YAML file and ``--set a.b=c`` overrides into these schemas with OmegaConf, which
types every value (``1e-1`` becomes the float 0.1) and refuses unknown keys; the field metadata
below (``ge``, ``gt``, ``le``, ``choices``) is checked once afterwards. Every module takes its
own typed section (``build_learner(ModelConfig)``, ``build_encoder(STGCNConfig)``, the
augmentation builders an :class:`AugmentConfig`), and the constructors of the components take
their defaults from these classes, so a default is written exactly once.

Two sections have variants: ``model.encoder`` is an :class:`STGCNConfig` or (``name: cffn``) a
:class:`CFFNConfig`, and ``model.augment.strong`` is an :class:`SSAConfig` (``strong_kind:
ssa``), an :class:`ExtremeConfig` (``extreme``) or empty (``none``). The variant is chosen by
the ``name`` / ``strong_kind`` that the merged layers give, before their values are typed.

This module imports nothing of ssal beyond the standard library, so every layer may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

# Choices of text settings (the modules that act on them import these tuples from here).
METHOD_ENCODERS = ("stgcn", "cffn", "transformer")
STRONG_KINDS = ("ssa", "extreme", "none")
DROP_MODES = ("aimclr", "per_frame")
FUSIONS = ("gate", "concat")
CENTER_MODES = ("first_frame", "per_frame", "none")
OPTIMIZERS = ("sgd", "adamw", "adam")
AMP_MODES = ("auto", "bf16", "off")
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")
BN_MODES = ("shuffle", "sync", "local")
ALLOCATOR_POLICIES = ("reuse", "release", "bounded", "system")
#: The allocator policy of ``ssal predict`` / ``ssal embed`` (``--allocator``): an inference
#: process repeats one batch's shapes, so keeping freed blocks costs no fragmentation and saves
#: the page faults of every large temporary (15-30% of predict's time on 2 cores at batch 256,
#: 0-4% at the CPU default of 64 below; benchmarks/RESULTS.md section 2).
PREDICT_ALLOCATOR = "reuse"
#: Default inference batch of ``EmotionModel.predict`` / ``embed`` on the CPU and on an
#: accelerator (a ``batch_size`` argument overrides it; the checkpoint's memory bound caps both).
#: On the CPU, batches of 32-64 sequences ran CFFN at 82-87% of the FLOP limit with glibc's own
#: allocator against 51% at 256, whose large temporaries are mapped and page-faulted afresh at
#: every batch (benchmarks/RESULTS.md section 2); on a GPU large batches fill the device.
PREDICT_BATCH_CPU = 64
PREDICT_BATCH_ACCELERATOR = 512
SCHEDULE_KINDS = ("step", "cosine")

_BIG = 10**12


def _num(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None) -> Any:
    """A numeric field with an allowed range (checked after the merge, with the key's name)."""
    meta = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le)) if v is not None}
    return field(default=default, metadata=meta)


def _choice(default: str, choices: tuple[str, ...]) -> Any:
    """A text field that must be one of ``choices``."""
    return field(default=default, metadata={"choices": choices})


def _list(*default: Any, ge: float | None = None, gt: float | None = None, le: float | None = None,
          length: int | None = None) -> Any:
    """A list field (items checked against the range, optionally of a fixed length)."""
    meta = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("length", length)) if v is not None}
    return field(default_factory=lambda: list(default), metadata=meta)


# ----------------------------------------------------------------------------- data


@dataclass
class DataConfig:
    """Where the sequences come from and how they are split (``data:``)."""

    #: ``"builtin"`` (the synthetic corpus) or a path readable by :func:`ssal.data.io.load_dataset`.
    source: str = "builtin"
    #: Size and seed of the built-in corpus (ignored for files).
    builtin_n: int = _num(2000, ge=1, le=10**7)
    builtin_seed: int = _num(0, ge=0, le=2**63 - 1)
    #: Optional explicit labels file (E-Gait ``labels.h5``, BVH ``labels.csv``).
    labels: Optional[str] = None
    #: Names of the label values 0, 1, ...: ``"egait"`` (happy, angry, sad, neutral), ``"step"``
    #: (angry, neutral, happy, sad; STEP's code), comma-separated names or a list of names.
    #: ``null``: the source's own: E-Gait's order for numeric labels (E-Gait files, label CSVs,
    #: the built-in corpus), the sorted label values for labels read from file names.
    label_map: Any = None
    #: Centring of raw sources and the built-in corpus (:mod:`ssal.data.preprocess`):
    #: ``"per_frame"`` (pose relative to the pelvis), ``"first_frame"`` (E-Gait's walking path
    #: kept) or ``"none"``. ``.ssal`` corpora are stored preprocessed and keep theirs.
    center: str = _choice("per_frame", CENTER_MODES)
    #: Seeded stratified split (SPEC: there is no official E-Gait split); every split of a run,
    #: of the experiments and of the protocol commands without ``--split`` reads these.
    val_fraction: float = _num(0.1, ge=0.0, le=0.99)
    test_fraction: float = _num(0.1, ge=0.0, le=0.99)
    split_seed: int = _num(0, ge=0, le=2**63 - 1)
    # How a folder is read (docs/data.md); every command that reads data reads these.
    #: Labels from the file names of a BVH folder: a template (``"{actor}_{emotion}_{take}"``)
    #: or a regular expression with named groups; ``null``: a labels file or ``labels.csv``.
    labels_from_name: Optional[str] = None
    #: The field of ``labels_from_name`` that is the label (``null``: the first of label,
    #: emotion, style, class).
    label_field: Optional[str] = None
    #: Keep the files whose field has one of the values: ``"content=walk,run"``; ``FIELD!=...``
    #: drops them. A text or a list of texts (all must hold).
    where: Any = None
    #: Raw label values mapped onto class names: ``"normal=neutral,tired=sad"`` (or a list).
    rename: Any = None
    #: Cut each recording into clips of this many frames (at 30 fps); ``null``: one sequence
    #: per file.
    window: Optional[int] = _num(None, ge=1, le=100_000)
    #: Frames between clip starts (``null``: half the window).
    stride: Optional[int] = _num(None, ge=1, le=100_000)
    #: Length units of BVH files: ``auto`` (from the skeleton's height), ``m``, ``cm``, ``mm``,
    #: ``in``, ``cmu`` or metres per unit as a number.
    units: Any = "auto"
    #: YAML joint map (``target joint: source joint name``) for rigs the rule-based matching
    #: cannot place.
    joint_map: Optional[str] = None
    #: What keeps sequences together in every split (they never sit on two sides):
    #: ``recording`` (the clips of one file), ``session`` (BVH capture session, from the header)
    #: or a field of ``labels_from_name`` (``actor``); ``null``: the source's own (the recording;
    #: a ``.ssal`` corpus keeps the grouping it was converted with).
    group_by: Optional[str] = None


# ----------------------------------------------------------------------------- train


@dataclass
class TrainConfig:
    """Optimiser and schedule of pretraining (``train:``): AimCLR's, SPEC section 2."""

    optimizer: str = _choice("sgd", OPTIMIZERS)
    #: Huge rates are allowed: they stop with "loss became nan".
    lr: float = _num(0.1, gt=0.0, le=1e300)
    weight_decay: float = _num(1.0e-4, ge=0.0, le=1e4)
    momentum: float = _num(0.9, ge=0.0, le=1.0)
    nesterov: bool = False
    #: The global batch (split over the ranks under torchrun).
    batch_size: int = _num(128, ge=1, le=10**6)
    epochs: int = _num(300, ge=1, le=10**7)
    #: ``step``: ``lr_gamma`` at each of ``lr_milestones`` (AimCLR's); ``cosine``: linear warm-up
    #: from 0 over ``warmup_epochs`` (``lr * epoch / warmup_epochs``), then half a cosine from
    #: ``lr`` down to ``min_lr`` at ``epochs`` (PSTL's ``adjust_learning_rate`` and MAE's
    #: ``lr_sched``, both stepped once per epoch here).
    schedule: str = _choice("step", SCHEDULE_KINDS)
    #: Epochs at which the rate is multiplied by ``lr_gamma`` (``step`` only).
    lr_milestones: list[int] = _list(250, ge=0)
    lr_gamma: float = _num(0.1, gt=0.0, le=1e4)
    warmup_epochs: int = _num(0, ge=0, le=10**7)
    #: The last rate of ``cosine``.
    min_lr: float = _num(0.0, ge=0.0, le=1e300)


# ----------------------------------------------------------------------------- encoders
# Widths have no upper bound here: the learner is built on the meta device before training and
# one whose parameters would not fit is refused with its size (ssal.training.engine.check_learner_size).


@dataclass
class EncoderConfig:
    """What every encoder's settings hold (``model.encoder``): its ``name`` (which schema below)
    and ``out_dim``, the size of the feature it returns."""

    name: str = _choice("stgcn", METHOD_ENCODERS)
    #: ``None``: no fc, the output is the pooled last map (AimCLR's evaluated feature).
    out_dim: Optional[int] = _num(None, ge=1)


@dataclass
class STGCNConfig(EncoderConfig):
    """ST-GCN encoder (AimCLR's / CrosSCLR's): keywords of :class:`ssal.models.STGCN`."""

    name: str = _choice("stgcn", METHOD_ENCODERS)
    #: AimCLR/CrosSCLR ``hidden_channels`` 16: widths 16,16,16,16,32,32,32,64,64 (then hidden_dim).
    base_channels: int = _num(16, ge=1)
    #: Last layer width; ``None``: AimCLR/CrosSCLR ``hidden_dim`` 256 (with ``channels``: its last entry).
    hidden_dim: Optional[int] = _num(None, ge=1)
    #: ``None``: the standard 10 layers; n: its first n layers.
    num_layers: Optional[int] = _num(None, ge=1, le=10)
    #: Explicit per-layer widths (``None``: derived from ``base_channels``).
    channels: Optional[list[int]] = _num(None, ge=1)
    #: Per-layer temporal strides, only with ``channels``.
    strides: Optional[list[int]] = _num(None, ge=1, le=64)
    temporal_kernel: int = _num(9, ge=1, le=999)
    dropout: float = _num(0.5, ge=0.0, le=1.0)
    edge_importance: bool = True


@dataclass
class CFFNConfig(STGCNConfig):
    """CFFN (SSAL): the ST-GCN graph branch above plus the AFF image branch, fused to ``out_dim``."""

    name: str = _choice("cffn", METHOD_ENCODERS)
    #: The fused feature (also the evaluation feature).
    out_dim: Optional[int] = _num(128, ge=1)
    use_graph: bool = True            # ablation: ST-GCN graph branch
    use_image: bool = True            # ablation: AFF image branch
    fusion: str = _choice("gate", FUSIONS)
    image_channels: int = _num(32, ge=1)
    image_depth: int = _num(2, ge=1, le=64)
    image_blocks: int = _num(4, ge=1, le=64)
    image_mlp_ratio: float = _num(2.0, gt=0.0, le=64.0)
    image_stem_stride: int = _num(2, ge=1, le=64)
    #: Softshrink lambda of the AFF frequency mask.
    image_sparsity: float = _num(0.01, ge=0.0, le=1e3)


@dataclass
class TransformerConfig(EncoderConfig):
    """MAMP's skeleton transformer (``model/transformer.py`` of maoyunyao/MAMP): keywords of
    :class:`ssal.models.transformer.SkeletonTransformer`; defaults from its NTU-60 configs."""

    name: str = _choice("transformer", METHOD_ENCODERS)
    #: ``None``: no fc, the output is the pooled token feature of width ``dim`` (MAMP's).
    out_dim: Optional[int] = _num(None, ge=1)
    #: Token width (``dim_feat``).
    dim: int = _num(256, ge=1)
    #: Transformer blocks (``depth``).
    depth: int = _num(8, ge=1, le=256)
    #: Attention heads; must divide ``dim``.
    num_heads: int = _num(8, ge=1, le=4096)
    #: Hidden width of each block's MLP as a multiple of ``dim``.
    mlp_ratio: float = _num(4.0, gt=0.0, le=64.0)
    #: Frames the encoder sees: every input is resampled to it (MAMP's window of 120).
    num_frames: int = _num(120, ge=1, le=100_000)
    #: Frames of one joint per token; must divide ``num_frames``.
    t_patch_size: int = _num(4, ge=1, le=100_000)
    qkv_bias: bool = True


#: Encoder schema by ``model.encoder.name``.
ENCODER_SCHEMAS: dict[str, type[EncoderConfig]] = {
    "stgcn": STGCNConfig, "cffn": CFFNConfig, "transformer": TransformerConfig,
}


# ----------------------------------------------------------------------------- augmentation


@dataclass
class GeneralAugmentConfig:
    """The general set T of every view (SkeletonCLR / AimCLR ``feeder/tools.py``)."""

    #: Frames of every output view (AimCLR's 50; E-Gait records T <= 75, ELMD <= 240).
    clip_len: int = _num(50, ge=1, le=100_000)
    #: Random crop (+ resize to clip_len); off: plain resize.
    temporal_crop: bool = True
    #: Mirrored frames (edge repeated) padded at each end: floor(L / 6).
    pad_ratio: float = _num(1 / 6, ge=0.0, le=10.0)
    #: (min, max) window as a fraction of L: AimCLR's shift-only crop; below 1: crop-and-resize.
    crop_ratio: list[float] = _list(1.0, 1.0, gt=0.0, le=1.0, length=2)
    shear: bool = True
    #: Off-diagonal shear entries ~ U(-a, a).
    shear_amplitude: float = _num(0.5, ge=0.0, le=100.0)


@dataclass
class StrongAugmentConfig:
    """The strong view's own settings (after T); empty for ``strong_kind: none``."""


@dataclass
class SSAConfig(StrongAugmentConfig):
    """SSAL's selective strong augmentation: upper-body jitter, part mask, temporal mask.

    Magnitudes are inferred (SPEC section 2)."""

    jitter: bool = True
    #: Per-sequence offset of each upper-limb joint, metres.
    jitter_offset_std: float = _num(0.1, ge=0.0, le=100.0)
    #: Extra per-frame jitter, metres (0: none).
    jitter_frame_std: float = _num(0.01, ge=0.0, le=100.0)
    #: Also move the trunk above the hips (spine, neck, head).
    jitter_trunk: bool = False
    jitter_p: float = _num(1.0, ge=0.0, le=1.0)
    #: Zero whole body parts, drawn in [min, max] per sample.
    spatial_mask: bool = True
    spatial_mask_min_parts: int = _num(1, ge=0, le=64)
    spatial_mask_max_parts: int = _num(2, ge=0, le=64)
    spatial_mask_p: float = _num(1.0, ge=0.0, le=1.0)
    #: Zero whole frames: a fraction of clip_len (8 of 50), or an exact count.
    temporal_mask: bool = True
    temporal_mask_ratio: float = _num(0.15, ge=0.0, le=1.0)
    temporal_mask_frames: Optional[int] = _num(None, ge=0, le=100_000)
    temporal_mask_p: float = _num(1.0, ge=0.0, le=1.0)


@dataclass
class ExtremeConfig(StrongAugmentConfig):
    """AimCLR's extreme set (``Feeder_triple._strong_aug``, applied in this order)."""

    flip: bool = True
    #: AimCLR swaps the mirrored joints only; true: also negate ``flip_axis``.
    flip_mirror: bool = False
    flip_axis: int = _num(0, ge=0, le=2)
    flip_p: float = _num(0.5, ge=0.0, le=1.0)
    rotate: bool = True
    #: Main axis angle ~ U(0, 30) degrees, the two other axes ~ U(0, 1).
    rotate_degrees: float = _num(30.0, ge=0.0, le=360.0)
    rotate_minor_degrees: float = _num(1.0, ge=0.0, le=360.0)
    #: true: U(-30, 30) / U(-1, 1).
    rotate_symmetric: bool = False
    #: AimCLR rotates every sample.
    rotate_p: float = _num(1.0, ge=0.0, le=1.0)
    time_flip: bool = True
    time_flip_p: float = _num(0.5, ge=0.0, le=1.0)
    noise: bool = True
    #: Metres.
    noise_std: float = _num(0.01, ge=0.0, le=100.0)
    noise_p: float = _num(0.5, ge=0.0, le=1.0)
    blur: bool = True
    #: Taps (odd).
    blur_kernel: int = _num(15, ge=1, le=999)
    #: (min, max) kernel width, frames.
    blur_sigma: list[float] = _list(0.1, 2.0, gt=0.0, le=1e3, length=2)
    #: AimCLR's kernel is not normalised (scales by 1-5x) and zero-padded.
    blur_normalize: bool = False
    blur_p: float = _num(0.5, ge=0.0, le=1.0)
    axis_mask: bool = True
    axis_mask_p: float = _num(0.5, ge=0.0, le=1.0)


#: Strong-view schema by ``model.augment.strong_kind``.
STRONG_SCHEMAS: dict[str, type[StrongAugmentConfig]] = {
    "ssa": SSAConfig, "extreme": ExtremeConfig, "none": StrongAugmentConfig,
}


@dataclass
class AugmentConfig:
    """The three views: s1, s2 = T(x); the strong view s3 = strong(T(x)) unless ``none``."""

    general: GeneralAugmentConfig = field(default_factory=GeneralAugmentConfig)
    strong_kind: str = _choice("ssa", STRONG_KINDS)
    strong: StrongAugmentConfig = field(default_factory=SSAConfig)


# ----------------------------------------------------------------------------- learner


@dataclass
class LossWeights:
    """L = info * L_Info + ld * L_d (the paper's a = b = 1)."""

    info: float = _num(1.0, ge=0.0, le=1e6)
    ld: float = _num(1.0, ge=0.0, le=1e6)


@dataclass
class PSTLConfig:
    """PSTL's settings (``model.pstl``, used by ``model.learner: pstl``; Zhou et al., AAAI 2023,
    reference ``YujieOuO/PSTL`` ``config.py``). The mask sizes are fractions so that one preset
    fits any rig and clip length: the reference hides 8 of NTU's 25 joints and removes 10 + 10 of
    its 50 frames."""

    #: Joints hidden by the central spatial mask (CSM): ``round(fraction * V)`` draws by degree.
    mask_joint_fraction: float = _num(0.32, ge=0.0, le=1.0)
    #: Frames of each of the motion-attention temporal mask's (MATM) two removals:
    #: ``round(fraction * clip_len)``; at most 1/2 minus one frame together.
    mask_frame_fraction: float = _num(0.2, ge=0.0, le=0.49)
    #: Width of the three bias-free layers of the Barlow Twins projector (``pj_size``).
    projector_dim: int = _num(6144, ge=1)
    #: Weight of the off-diagonal term of the Barlow Twins loss (``lambd``).
    lambd: float = _num(2e-4, ge=0.0, le=1e6)


@dataclass
class MAMPConfig:
    """MAMP's settings (``model.mamp``, used by ``model.learner: mamp``; Mao et al., ICCV 2023,
    reference ``maoyunyao/MAMP``: ``model_mamp/transformer.py``, ``feeder/tools.py`` and
    ``config/ntu60_xsub_joint/pretrain_mamp_t120_layer8+3_mask90.yaml``)."""

    #: Fraction of the tokens hidden from the encoder (``mask_ratio``).
    mask_ratio: float = _num(0.9, ge=0.0, le=0.999)
    #: Temperature of the motion-aware masking (``motion_aware_tau``); 0: uniform random masking.
    motion_aware_tau: float = _num(0.8, ge=0.0, le=1e6)
    #: Frames between the positions whose difference is the predicted motion (``motion_stride``).
    motion_stride: int = _num(1, ge=1, le=100_000)
    #: Width, blocks and heads of the decoder (``decoder_dim_feat``, ``decoder_depth``; the
    #: reference's decoder takes the encoder's ``num_heads``).
    decoder_dim: int = _num(256, ge=1)
    decoder_depth: int = _num(3, ge=1, le=256)
    decoder_heads: int = _num(8, ge=1, le=4096)
    #: Standardise the motion target per token (``norm_skes_loss``).
    norm_target: bool = True
    #: The view's crop: a fraction ``U(crop_ratio)`` of the valid frames, at least
    #: ``crop_min_frames`` of them (``p_interval`` and the 64 of ``valid_crop_resize``).
    crop_ratio: list[float] = _list(0.5, 1.0, gt=0.0, le=1.0, length=2)
    crop_min_frames: int = _num(64, ge=1, le=100_000)
    #: The view's rotation about x, y and z by ``U(-rotate_max, rotate_max)`` radians each
    #: (``random_rot`` with ``theta`` 0.3).
    rotate: bool = True
    rotate_max: float = _num(0.3, ge=0.0, le=10.0)


@dataclass
class ModelConfig:
    """The learner (``model:``): encoder, views, MoCo queue and momentum, losses. SSAL's values.

    The strong view is built unless ``augment.strong_kind`` is ``none``; it feeds L_d, or, with
    ``use_ld`` off, InfoNCE against the same keys (AimCLR's ablation without D3M). ``use_drop``
    only matters when the strong view exists.
    """

    #: The training algorithm (a name of ``ssal.methods.learner.LEARNERS``): ``moco`` for SSAL,
    #: AimCLR and SkeletonCLR.
    learner: str = "moco"
    encoder: EncoderConfig = field(default_factory=CFFNConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    #: Output of the MLP projection head (z1, z2, z3).
    feature_dim: int = _num(128, ge=1)
    head_hidden: int = _num(128, ge=1)
    #: E-Gait has ~2.2k real sequences (~1.7k in a training split): 1024 keys are about 60% of
    #: an epoch. Many negatives, yet fewer than the training set, so a sequence's own key from
    #: the previous epoch has usually been overwritten (a stale copy of itself is a false
    #: negative). AimCLR's 32,768 fits NTU's 40k sequences, not E-Gait.
    queue_size: int = _num(1024, ge=1, le=2**26)
    momentum: float = _num(0.999, ge=0.0, le=1.0)
    temperature: float = _num(0.07, gt=0.0, le=1e6)
    #: SimAM drop on the strong view's last feature maps (z3').
    use_drop: bool = True
    drop_threshold: float = _num(0.7, ge=0.0, le=1.0)
    #: AimCLR's Simam_Drop arithmetic; ``per_frame``: ssal 0.1's whole-frame variant.
    drop_mode: str = _choice("aimclr", DROP_MODES)
    #: Distributional divergence L_d (the strong view only feeds L_d).
    use_ld: bool = True
    loss_weights: LossWeights = field(default_factory=LossWeights)
    #: AimCLR's nearest-neighbour mining: top-k queue entries become extra positives from
    #: ``mining_epoch`` on (0: off, SSAL).
    mining_topk: int = _num(0, ge=0, le=2**26)
    mining_epoch: int = _num(0, ge=0, le=10**7)
    #: PSTL's masks and loss (``learner: pstl`` only).
    pstl: PSTLConfig = field(default_factory=PSTLConfig)
    #: MAMP's view, masking, decoder and target (``learner: mamp`` only).
    mamp: MAMPConfig = field(default_factory=MAMPConfig)


# ----------------------------------------------------------------------------- evaluation


@dataclass
class ProbeConfig:
    """The SGD schedule of one classifier protocol (``eval.linear``, ``eval.finetune``)."""

    epochs: int = _num(100, ge=1, le=10**6)
    lr: float = _num(3.0, gt=0.0, le=1e6)
    weight_decay: float = _num(0.0, ge=0.0, le=1e4)
    momentum: float = _num(0.9, ge=0.0, le=1.0)
    #: Epochs at which the rate is multiplied by ``gamma`` (``schedule: step``).
    milestones: list[int] = _list(80, ge=0)
    gamma: float = _num(0.1, gt=0.0, le=1e4)
    schedule: str = _choice("step", SCHEDULE_KINDS)
    batch_size: int = _num(128, ge=1, le=10**6)


@dataclass
class LinearProbeConfig(ProbeConfig):
    """The linear protocol (SPEC, AimCLR's): frozen encoder in eval mode, raw features, SGD lr 3.0,
    no weight decay, 100 epochs, x0.1 at epoch 80, batch 128."""

    #: The rate of the second linear probe, on standardised features (``linear_std``).
    standardized_lr: float = _num(0.3, gt=0.0, le=1e6)


@dataclass
class FinetuneProbeConfig(ProbeConfig):
    """Finetune and supervised-from-scratch. SPEC gives no numbers: SGD lr 0.05, weight decay
    1e-4, 100 epochs, x0.1 at epoch 80 (the step schedule of AimCLR's protocols), batch 64 so that
    small label fractions still make a few steps per epoch."""

    lr: float = _num(0.05, gt=0.0, le=1e6)
    weight_decay: float = _num(1.0e-4, ge=0.0, le=1e4)
    batch_size: int = _num(64, ge=1, le=10**6)


@dataclass
class SemiConfig:
    """The semi-supervised protocol: finetune on class-balanced label fractions."""

    fractions: list[float] = _list(0.01, 0.05, 0.1, gt=0.0, le=1.0)
    #: One run per seed and fraction (the seed draws the subset and seeds training).
    seeds: list[int] = _list(0, 1, 2, ge=0, le=2**32 - 1)


@dataclass
class EvalConfig:
    """The evaluation protocols (``eval:``): their schedules, label fractions and seeds. The kNN
    protocol reads ``run.knn_k`` and ``run.knn_temperature`` (shared with the pretraining monitor)."""

    linear: LinearProbeConfig = field(default_factory=LinearProbeConfig)
    finetune: FinetuneProbeConfig = field(default_factory=FinetuneProbeConfig)
    semi: SemiConfig = field(default_factory=SemiConfig)


# ----------------------------------------------------------------------------- run


@dataclass
class RunConfig:
    """How this invocation runs (``run:``): device, precision, monitors, logging, limits.

    On resume the ``run`` section of the new invocation replaces the checkpoint's."""

    #: ``"auto"`` takes CUDA when present, else the CPU.
    device: str = "auto"
    #: Mixed precision of the training step: ``"auto"`` (bf16 autocast on CUDA, fp32 on the CPU),
    #: ``"bf16"`` (bf16 autocast on any device), ``"off"``. Losses are always fp32. true / false
    #: of ssal 0.1 read as ``"auto"`` / ``"off"``.
    amp: str = _choice("auto", AMP_MODES)
    #: ``torch.compile`` of the encoders' ``feature_maps`` (query and key encoder).
    compile: bool = False
    #: ``"inductor"`` (code generation; needs a C/C++ compiler on the CPU), or ``"aot_eager"`` /
    #: ``"eager"`` (tracing only, for checks).
    compile_backend: str = _choice("inductor", COMPILE_BACKENDS)
    #: kNN monitor on the validation split every N epochs (0: off); its k and temperature are
    #: also those of the kNN protocol.
    knn_every: int = _num(5, ge=0, le=10**7)
    knn_k: int = _num(20, ge=1, le=10**6)
    knn_temperature: float = _num(0.1, gt=0.0, le=1e6)
    #: Save the query encoder as ``<run>/snapshots/encoder-eNNNN.pt`` every N epochs, and at
    #: epoch 0 (the random initialisation) when a run starts (0: off). Benchmarks read these
    #: for learning curves (probe accuracy against epoch).
    snapshot_every: int = _num(0, ge=0, le=10**7)
    #: Stop after this many optimisation steps in total (``None``: run all epochs).
    max_steps: Optional[int] = _num(None, ge=1, le=_BIG)
    #: torch intra-op threads (``None``: torch's default).
    threads: Optional[int] = _num(None, ge=1, le=4096)
    #: Worker processes of a job's independent stages (``ssal demo``, ``ssal reproduce``:
    #: pretraining seeds, evaluations, references; ssal.experiments.stage_pool). ``None``: one
    #: per core, one thread each, on a CPU with 2-4 cores; 4 sharing the cores on more; 1 on a
    #: GPU. ``1``: every stage in the job's own process.
    workers: Optional[int] = _num(None, ge=1, le=256)
    #: Scalars (loss and its parts, lr, throughput, kNN accuracy) to ``<run>/tensorboard``;
    #: needs the ``tensorboard`` extra.
    tensorboard: bool = False
    progress: bool = True
    #: BatchNorm under torchrun (docs/distributed.md): ``"shuffle"`` (MoCo's shuffle-BN for the
    #: key encoder), ``"sync"`` (SyncBatchNorm, CUDA only) or ``"local"`` (per-rank BN).
    dist_bn: str = _choice("shuffle", BN_MODES)
    #: Host memory allocator policy of the training process (:mod:`ssal.training.allocator`):
    #: ``"reuse"`` keeps every freed block for the next step (on 2 CPU cores against the AimCLR
    #: reference, benchmarks/RESULTS.md section 0, fourth part: ``aimclr`` 2.5-4.9x its speed at
    #: 0.41-0.44 of its peak memory, ``ssal`` 2.0-3.8x at 0.51-0.56, the resident set read after 30
    #: steps; the low speed ends against the reference's fastest step at T = 75), ``"bounded"``
    #: keeps blocks up to 32 MiB and returns larger ones (0.34-0.52 of the memory, 4-30% slower),
    #: ``"release"`` returns every block above 1 MiB (lowest peak, slowest), ``"system"`` leaves
    #: glibc's defaults.
    allocator: str = _choice("reuse", ALLOCATOR_POLICIES)


@dataclass
class Config:
    """One run: ``method`` (a preset of ``ssal/config/methods``), ``seed`` and the sections."""

    method: str = "ssal"
    seed: int = _num(0, ge=0, le=2**63 - 1)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)


__all__ = [
    "AugmentConfig", "CFFNConfig", "Config", "MAMPConfig", "TransformerConfig", "DataConfig", "ENCODER_SCHEMAS", "EncoderConfig", "PSTLConfig", "EvalConfig", "ExtremeConfig",
    "FinetuneProbeConfig", "LinearProbeConfig", "ProbeConfig", "SemiConfig",
    "GeneralAugmentConfig", "LossWeights", "ModelConfig", "RunConfig", "SSAConfig", "STGCNConfig",
    "STRONG_SCHEMAS", "StrongAugmentConfig", "TrainConfig", "STRONG_KINDS", "DROP_MODES",
]
