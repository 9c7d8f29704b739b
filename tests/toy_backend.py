"""A toy backend on :class:`vidal.detection.torch_detector.TorchDetector`: one box per image from
its mean colour (``x1, y1, x2, y2 = W (mean RGB) + b``), written as nothing but a config, a model, a
batch loss, a batch prediction and a checkpoint check. Training, batched prediction and save /
load / load_weights come from the base class (tests/test_detection.py, tests/test_amp.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from vidal.detection.base import Predictions, StrictConfig
from vidal.detection.schedule import ScheduleConfig
from vidal.detection.torch_detector import TorchDetector

#: five 8 x 8 images of growing grey levels, each with one box that grows with it
FRAMES = [{"image": np.full((8, 8, 3), 40 * k, np.uint8), "boxes": np.array([[k, k, 2 * k, 3 * k]], np.float32),
           "labels": np.array([1])} for k in range(1, 6)]
#: a schedule that fits FRAMES in one batch per epoch (epochs set by each test)
FIELDS = {"lr": 0.05, "milestones": (), "batch_size": 5, "hflip": 0.0, "grad_clip": None}


@dataclasses.dataclass
class OneBoxConfig(ScheduleConfig, StrictConfig):
    device: str = "cpu"
    predict_batch_size: int = 2


class OneBox(TorchDetector):
    """One box per image from its mean colour (a linear map): enough of a backend to train. Outputs
    are cast to float32 (under float16 autocast the linear layer gives float16)."""

    backend = "one_box_test"
    architecture = "linear"

    @staticmethod
    def check_config(*, profile=None, fields=None):
        return OneBoxConfig.from_dict(dict(fields or {}))

    def build_model(self):
        return torch.nn.Linear(3, 4)

    def _features(self, images):
        return torch.stack([torch.as_tensor(np.asarray(im, np.float32).mean(axis=(0, 1)) / 255) for im in images])

    def batch_losses(self, batch):
        frames, _flips = batch
        target = torch.as_tensor(np.stack([f["boxes"][0] for f in frames]))
        return {"box": ((self.model(self._features([f["image"] for f in frames])).float() - target) ** 2).mean()}

    def predict_batch(self, images):
        boxes = self.model(self._features(images)).float().numpy()
        return [Predictions(b[None], [1.0], [1], [[0.0, 1.0]]) for b in boxes]

    def check_checkpoint(self, path, ckpt):
        if ckpt["num_classes"] != self.num_classes:
            raise ValueError(f"{path}: {ckpt['num_classes']} classes, not {self.num_classes}")

    @classmethod
    def from_checkpoint(cls, path, ckpt, **expect):
        return cls(class_names=ckpt["class_names"], config=OneBoxConfig.from_dict({**ckpt["config"], **expect}))
