"""Mixed precision (issue 18, ``schedule.amp``): off by default; on CPU a no-op with a warning
(the same losses as float32); the loss-scaling path of ``schedule.fit`` (autocast + GradScaler,
what a GPU runs with ``amp_device="cuda"``) exercised on CPU's float16 autocast."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toy_backend import FIELDS as TOY_FIELDS
from toy_backend import FRAMES, OneBox
from vidal.detection.schedule import ScheduleConfig, fit


FIELDS = {**TOY_FIELDS, "epochs": 20}


def _train(**extra):
    torch.manual_seed(0)
    det = OneBox.from_config(class_names=["thing"], fields={**FIELDS, **extra})
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
