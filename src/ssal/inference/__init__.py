"""Using a trained model: :func:`load` (a checkpoint or an ONNX export) gives an
:class:`EmotionModel` that reads files and arrays, ``predict``s emotions and ``embed``s
sequences (:mod:`.loading`, :mod:`.model`, :mod:`.onnx_model`); :mod:`.export` writes a model as
one ONNX or TorchScript file. ``ssal.load`` is :func:`load`.
"""

from .loading import load
from .model import EmotionModel, fold_for_inference, load_encoder, save_classifier, upgrade_encoder_config
from .onnx_model import OnnxEmotionModel

__all__ = ["EmotionModel", "OnnxEmotionModel", "fold_for_inference", "load", "load_encoder", "save_classifier",
           "upgrade_encoder_config"]
