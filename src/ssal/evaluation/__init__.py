"""Evaluation protocols on an encoder and :class:`~ssal.data.GaitDataset` splits.

* :mod:`.metrics`: confusion matrix, top-1, macro-F1, per-class accuracy, reports.
* :mod:`.features`: encoding sequences (eval mode, optional time resizing).
* :mod:`.knn`: temperature-weighted cosine kNN (its vote is the pretraining monitor's, :mod:`ssal.training.monitor`).
* :mod:`.classifier`: linear, finetune and supervised training; :class:`Classifier`.
* :mod:`.semi`: finetuning on class-balanced label fractions over several seeds.
* :mod:`.report`: ``report.md`` + ``results.json``; :mod:`.plots`: figures (imported on
  demand, it loads matplotlib).
"""

from ..models.base import resize_time
from .classifier import (
    Classifier,
    ClassifierSettings,
    FinetuneConfig,
    LinearConfig,
    default_config,
    evaluate,
    make_head,
    predict,
    protocol_schedule,
    train_classifier,
)
from .features import extract_features
from .knn import KnnSettings, knn_evaluate, knn_predict, knn_scores
from .metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    macro_f1,
    per_class_accuracy,
    summarize_runs,
)
from .report import format_table, write_report
from .semi import SemiSettings, semi_supervised

__all__ = [
    "Classifier",
    "ClassifierSettings",
    "FinetuneConfig",
    "KnnSettings",
    "LinearConfig",
    "SemiSettings",
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "default_config",
    "evaluate",
    "extract_features",
    "format_table",
    "knn_evaluate",
    "knn_predict",
    "knn_scores",
    "macro_f1",
    "make_head",
    "per_class_accuracy",
    "predict",
    "resize_time",
    "protocol_schedule",
    "semi_supervised",
    "summarize_runs",
    "train_classifier",
    "write_report",
]
