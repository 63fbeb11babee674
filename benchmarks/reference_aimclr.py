"""Run the public AimCLR implementation (Levigty/AimCLR) on this machine, for same-run ratios.

The reference code is *imported* from a checkout given by the user (``--reference DIR`` of
``bench_pretrain.py``; nothing of it is copied here) and adapted at run time, without editing
its files, to what it was never written for:

* ``torchlight.import_class`` (AimCLR's helper package, not on PyPI) is provided as a stub;
* on the CPU ``Tensor.cuda`` becomes the identity (on a GPU, ``device="cuda"``, it stays as it
  is: the reference's own placement), and ``AimCLR._dequeue_and_enqueue`` uses GPU index 0
  (``keys.device.index`` is ``None`` on the CPU);
* the graph gets an ``egait16`` layout (E-Gait's 16 joints, edges and centre from
  :data:`ssal.skeleton.EGAIT16`), the Simam drop its ``num_point=16``, and the feeder's
  left/right flip order E-Gait's mirror permutation (the reference hard-codes NTU's 25 joints).

Everything else is the reference's own code at its pretext configuration
(``config/ntu60/pretext/pretext_aimclr_xsub_joint.yaml``): ``Feeder_triple``'s per-sample NumPy
augmentation (its default ``aug_method='12345'``), ``net.aimclr.AimCLR`` with the
``net.st_gcn.Model`` encoder (hidden_channels 16, hidden_dim 256, projector MLP, feature 128),
and ``processor/pretrain_aimclr.py``'s loss before the mining epoch
(``CE + (DDM_e + DDM_ed) / 2``) with SGD (lr 0.1, momentum 0.9, weight decay 1e-4).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _install_patches(ref_dir: Path, device: str = "cpu") -> None:
    """Make the reference importable and runnable on ``device`` (the CPU or CUDA) with E-Gait's
    skeleton."""
    import torch

    from ssal.skeleton import EGAIT16

    if not (ref_dir / "net" / "aimclr.py").is_file():
        raise SystemExit(f"{ref_dir}: not an AimCLR checkout (net/aimclr.py is missing)")
    sys.path.insert(0, str(ref_dir))

    def import_class(name: str) -> Any:
        module, _, attr = name.rpartition(".")
        return getattr(importlib.import_module(module), attr)

    stub = types.ModuleType("torchlight")
    stub.import_class = import_class  # type: ignore[attr-defined]
    sys.modules.setdefault("torchlight", stub)
    if torch.device(device).type == "cpu":
        torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]

    graph_mod = importlib.import_module("net.utils.graph")
    original_get_edge = graph_mod.Graph.get_edge

    def get_edge(self, layout):  # noqa: ANN001 - the reference's signature
        if layout != "egait16":
            return original_get_edge(self, layout)
        self.num_node = EGAIT16.num_joints
        self.edge = [(i, i) for i in range(self.num_node)] + [tuple(e) for e in EGAIT16.edges]
        self.center = EGAIT16.center

    graph_mod.Graph.get_edge = get_edge

    tools = importlib.import_module("feeder.tools")
    tools.transform_order["ntu"] = [int(i) for i in EGAIT16.mirror_permutation()]

    aimclr_mod = importlib.import_module("net.aimclr")

    @torch.no_grad()
    def dequeue_and_enqueue(self, keys):  # noqa: ANN001
        ptr = int(self.queue_ptr)
        self.queue[:, ptr:ptr + keys.shape[0]] = keys.T

    aimclr_mod.AimCLR._dequeue_and_enqueue = dequeue_and_enqueue


def build_reference(ref_dir: Path, queue: int, device: str = "cpu") -> tuple[Any, Any]:
    """(AimCLR model, Feeder_triple-like feeder without data) from the checkout ``ref_dir``."""
    _install_patches(ref_dir, device)
    aimclr_mod = importlib.import_module("net.aimclr")
    att_drop = importlib.import_module("net.att_drop")
    feeder_mod = importlib.import_module("feeder.ntu_feeder")
    from ssal.skeleton import EGAIT16

    model = aimclr_mod.AimCLR(
        base_encoder="net.st_gcn.Model", pretrain=True, feature_dim=128, queue_size=queue,
        momentum=0.999, Temperature=0.07, mlp=True, in_channels=3, hidden_channels=16,
        hidden_dim=256, num_class=60, dropout=0.5,
        graph_args={"layout": "egait16", "strategy": "spatial"}, edge_importance_weighting=True)
    for enc in (model.encoder_q, model.encoder_k):
        enc.dropout = att_drop.Simam_Drop(num_point=EGAIT16.num_joints, keep_prob=0.7)
    feeder = object.__new__(feeder_mod.Feeder_triple)
    feeder.shear_amplitude = 0.5
    feeder.temperal_padding_ratio = 6
    feeder.aug_method = "12345"
    return model, feeder


def reference_step_fn(ref_dir: Path, data: np.ndarray, queue: int, device: str = "cpu",
                      autocast: Callable[[], Any] | None = None) -> tuple[Callable[[np.ndarray], dict], Any]:
    """A function doing one reference training step on the rows ``idx`` of ``data`` (N, C, T, V).

    Returns ``(step, model)``; ``step(idx)`` returns the seconds spent in the data path (the
    feeder's per-sample augmentation and collation, in this process as with ``num_workers=0``,
    and the copy to ``device``) and the loss. ``autocast``: a context factory around the model
    and its loss (e.g. bf16 autocast; the reference trains in fp32 as published).
    """
    import contextlib
    import time

    import torch
    import torch.nn.functional as F

    model, feeder = build_reference(ref_dir, queue, device)
    model.to(device).train()
    ctx = autocast or contextlib.nullcontext
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4)
    feeder.data = data[..., None]  # (N, C, T, V, M=1): the reference's layout
    feeder.label = np.zeros(len(data), dtype=np.int64)
    collate = torch.utils.data.default_collate

    def step(idx: np.ndarray) -> dict:
        t0 = time.perf_counter()
        views, _ = collate([feeder[int(i)] for i in idx])
        data1, data2, data3 = (v.float().to(device, non_blocking=True) for v in views)
        data_s = time.perf_counter() - t0
        with ctx():
            output1, target1, output2, output3, target2 = model(data1, data2, data3)
            model.update_ptr(output1.size(0))
            loss1 = F.cross_entropy(output1.float(), target1)
            loss2 = -torch.mean(torch.sum(torch.log(output2.float()) * target2, dim=1))
            loss3 = -torch.mean(torch.sum(torch.log(output3.float()) * target2, dim=1))
            loss = loss1 + (loss2 + loss3) / 2.0
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"data_s": data_s, "loss": float(loss.detach())}

    return step, model
