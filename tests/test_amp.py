"""Mixed precision (issue 18, ``schedule.amp``): off by default; on CPU a no-op with a warning
(the same losses as float32); the loss-scaling path of ``schedule.fit`` (autocast + GradScaler,
what a GPU runs with ``amp_device="cuda"``) exercised on CPU's float16 autocast."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vidal.detection.base import Predictions, StrictConfig
from vidal.detection.schedule import ScheduleConfig, fit
from vidal.detection.torch_detector import TorchDetector


@dataclasses.dataclass
class LineConfig(ScheduleConfig, StrictConfig):
    device: str = "cpu"
    predict_batch_size: int = 2


class Line(TorchDetector):
    """One box per image from its mean colour (a linear map): enough of a backend to train."""

    backend = "amp_test"
    architecture = "linear"

    @staticmethod
    def check_config(*, profile=None, fields=None):
        return LineConfig.from_dict(dict(fields or {}))

    def build_model(self):
        return torch.nn.Linear(3, 4)

    def _x(self, images):
        return torch.stack([torch.as_tensor(np.asarray(im, np.float32).mean(axis=(0, 1)) / 255) for im in images])

    def batch_losses(self, batch):
        frames, _ = batch
        target = torch.as_tensor(np.stack([f["boxes"][0] for f in frames]))
        return {"box": ((self.model(self._x([f["image"] for f in frames])).float() - target) ** 2).mean()}

    def predict_batch(self, images):
        return [Predictions(b[None], [1.0], [1], [[0.0, 1.0]]) for b in self.model(self._x(images)).float().numpy()]


FRAMES = [{"image": np.full((8, 8, 3), 40 * k, np.uint8), "boxes": np.array([[k, k, 2 * k, 3 * k]], np.float32),
           "labels": np.array([1])} for k in range(1, 6)]
FIELDS = {"lr": 0.05, "epochs": 20, "milestones": (), "batch_size": 5, "hflip": 0.0, "grad_clip": None}


def _train(**extra):
    torch.manual_seed(0)
    det = Line.from_config(class_names=["thing"], fields={**FIELDS, **extra})
    return det, [r["loss"] for r in det.train(FRAMES)]


def test_amp_is_off_by_default_and_a_no_op_with_a_warning_on_cpu():
    assert ScheduleConfig().amp is False
    with pytest.raises(ValueError, match="amp"):
        ScheduleConfig(amp="yes")
    _, plain = _train()
    with pytest.warns(UserWarning, match="no effect on CPU"):
        det, amp = _train(amp=True)
    assert amp == plain and det.amp_device is None
    assert det.predict([FRAMES[0]["image"]])[0].boxes.dtype == np.float32


@pytest.mark.filterwarnings("ignore:Detected call of")  # GradScaler skips the first (overflowing) step
def test_fit_with_autocast_and_loss_scaling_trains():
    """The GPU path of fit (float16 autocast, GradScaler, unscale before clipping) on the CPU."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 4)
    x = torch.rand(8, 3)
    y = x @ torch.tensor([[1.0, 2, 3, 4]] * 3) + 1

    def losses(batch):
        assert torch.is_autocast_enabled("cpu")
        return {"l2": ((model(x).float() - y) ** 2).mean()}

    sched = ScheduleConfig(lr=0.05, epochs=40, milestones=(), grad_clip=5.0)
    rows = fit(losses, list(model.parameters()), lambda: [None], sched, module=model, amp_device="cpu")
    assert len(rows) == 40 and rows[-1]["loss"] < 0.2 * rows[0]["loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay float32
