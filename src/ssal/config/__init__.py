"""Run configuration: typed schemas (:mod:`.schema`) and their resolution (:mod:`.resolve`)."""

from .resolve import (
    DEFAULTS,
    RANGES,
    as_plain,
    clip_len,
    deep_merge,
    dump_config,
    merge_typed,
    parse_overrides,
    read_yaml,
    resolve_config,
    typed_config,
    typed_section,
    validate_config,
)
from .schema import (
    AugmentConfig,
    CFFNConfig,
    Config,
    DataConfig,
    EncoderConfig,
    EvalConfig,
    ExtremeConfig,
    GeneralAugmentConfig,
    LossWeights,
    ModelConfig,
    RunConfig,
    SSAConfig,
    STGCNConfig,
    StrongAugmentConfig,
    TrainConfig,
)

__all__ = [
    "AugmentConfig", "CFFNConfig", "Config", "DEFAULTS", "DataConfig", "EvalConfig", "ExtremeConfig",
    "GeneralAugmentConfig", "LossWeights", "ModelConfig", "RANGES", "RunConfig", "SSAConfig",
    "EncoderConfig", "STGCNConfig", "StrongAugmentConfig", "TrainConfig", "as_plain", "clip_len", "deep_merge",
    "dump_config", "merge_typed", "parse_overrides", "read_yaml", "resolve_config", "typed_config",
    "typed_section", "validate_config",
]
