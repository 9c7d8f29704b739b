"""MMDetection backend: the :class:`vidal.detection.base.Detector` protocol over an mmdet model.

Any mmdet two-stage detector whose RoI head is a ``StandardRoIHead`` with a ``BBoxHead`` (Faster
R-CNN and its variants) works; the model is built from an mmdet config file:

- ``config = "mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py"`` (default: the thesis's detector,
  Faster R-CNN R50-FPN) names a config shipped inside the installed mmdet package
  (``mmdet/.mim/configs``); any other value is a path to an mmdet config file (its ``_base_`` may
  itself use ``mmdet::``). Only the config's ``model`` section is used: vidal feeds the frames,
  resizes them to a fixed ``height`` (thesis 2.5.1: 300 px) and runs the schedule of
  :mod:`vidal.detection.schedule` (the same SGD + step schedule as the torchvision backend).
- ``cfg_options`` (a dict of dotted keys, as mmdet's ``--cfg-options``) edits that config;
  ``roi_head.bbox_head.num_classes`` is always set to the dataset's class count.
- ``weights``: an mmdet checkpoint (e.g. COCO weights from the mmdet model zoo) loaded into every
  tensor of matching name and shape (the class-specific box-head layers of a COCO model do not
  match a 3-class head and keep their fresh initialisation). Backbone ``init_cfg`` entries that
  would download ImageNet weights are removed: nothing is fetched over the network.

Predictions keep the full softmax row of each kept detection: the box head's per-image
post-processing is wrapped so that mmdet's own ``multiclass_nms`` also returns the index of each
kept candidate, whose proposal's row (mmdet puts background last; vidal first) is returned as
``probs``.

MMDetection 3.3 needs mmcv 2.1 with compiled ops, which do not build against vidal's main torch;
``bash tools/setup_mmdet_env.sh`` makes a separate environment (``.venv-mmdet``) where this
backend runs. Without mmdet, building the backend is a one-line error naming that script.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidal.detection.base import Predictions, StrictConfig, checkpoint_config
from vidal.detection.schedule import ScheduleConfig
from vidal.detection.torch_detector import TorchDetector, to_device
from vidal.weights import check_state_dict, read_torch_file
from vidal.registry import DETECTORS

BACKEND = "mmdet"
DEFAULT_CONFIG = "mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py"
SETUP_SCRIPT = "tools/setup_mmdet_env.sh"


class MMDetUnavailable(ImportError):
    """mmdet / mmcv / mmengine cannot be imported in this Python."""


def require_mmdet():
    """Import mmdet (registering its modules) or raise a one-line :class:`MMDetUnavailable`."""
    try:
        import mmcv  # noqa: F401
        import mmdet
        import mmengine  # noqa: F401
        from mmcv.ops import nms  # noqa: F401 - mmcv built without ops has no compiled nms
        from mmdet.utils import register_all_modules
    except Exception as e:  # noqa: BLE001 - ImportError, or a broken mmcv build (OSError / undefined symbol)
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise MMDetUnavailable(
            f"detector.backend='mmdet' needs MMDetection 3.3 with mmcv 2.1 (compiled ops) and mmengine, which "
            f"this Python ({sys.executable}) cannot import ({type(e).__name__}: {first}); create their "
            f"environment with `bash {SETUP_SCRIPT}` (about 20 min the first time) and run vidal with "
            f"`.venv-mmdet/bin/python`") from None
    register_all_modules(init_default_scope=True)
    return mmdet


# --------------------------------------------------------------------------- config


@dataclass
class MMDetConfig(ScheduleConfig, StrictConfig):
    """The mmdet model to build and every number of its training schedule (thesis 2.5.1 defaults,
    the same names and values as :class:`vidal.detection.FasterRCNNConfig`)."""

    config: str = DEFAULT_CONFIG        # "mmdet::<path inside mmdet's configs>" or a config file path
    cfg_options: dict[str, Any] = field(default_factory=dict)  # dotted-key edits of the mmdet config
    weights: str | None = None          # mmdet checkpoint (e.g. COCO), loaded where names and shapes match
    # input size: fixed height, aspect ratio kept (thesis: 300 px)
    height: int = 300
    max_width: int = 2000
    # schedule: the fields of ScheduleConfig (shared with the torchvision backend)
    # RoI head test settings (written into the mmdet config's test_cfg.rcnn)
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 100
    # runtime
    predict_batch_size: int = 8
    device: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cfg_options = dict(self.cfg_options or {})
        for name in ("height", "max_width", "epochs", "batch_size", "predict_batch_size", "box_detections_per_img"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not isinstance(self.config, str) or not self.config:
            raise ValueError(f"config must name an mmdet config file, got {self.config!r}")


def resolve_config_path(name: str) -> Path:
    """``mmdet::rel/path.py`` → the file inside the installed mmdet; otherwise ``name`` as a path."""
    if name.startswith("mmdet::"):
        mmdet = require_mmdet()
        path = Path(mmdet.__file__).parent / ".mim" / "configs" / name[len("mmdet::"):]
    else:
        path = Path(name)
    if not path.is_file():
        raise ValueError(f"detector.config: mmdet config {name} not found ({path})")
    return path


def model_config(cfg: MMDetConfig, num_classes: int) -> dict:
    """The mmdet ``model`` dict for ``cfg`` with ``num_classes`` classes, as a plain dict (stored in
    checkpoints so that a model rebuilds without the config file)."""
    require_mmdet()
    from mmengine.config import Config

    path = resolve_config_path(cfg.config)
    try:
        mm = Config.fromfile(str(path))
        if cfg.cfg_options:
            mm.merge_from_dict(dict(cfg.cfg_options))
    except Exception as e:  # noqa: BLE001 - syntax errors, bad _base_, bad keys: one line naming the file
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise ValueError(f"{path}: cannot read the mmdet config ({type(e).__name__}: {first})") from None
    if "model" not in mm:
        raise ValueError(f"{path}: the mmdet config has no `model` section")
    model = mm.model.to_dict()
    roi = model.get("roi_head") or {}
    head = roi.get("bbox_head")
    if not isinstance(head, dict) or roi.get("type") != "StandardRoIHead":
        raise ValueError(f"{path}: the vidal mmdet backend needs a two-stage detector with a StandardRoIHead and "
                         f"one bbox_head (Faster R-CNN style); this config's roi_head is {roi.get('type')!r}")
    head["num_classes"] = int(num_classes)
    _drop_download_inits(model)
    model.setdefault("test_cfg", {}).setdefault("rcnn", {})
    model["test_cfg"]["rcnn"].update(score_thr=cfg.box_score_thresh,
                                     nms=dict(type="nms", iou_threshold=cfg.box_nms_thresh),
                                     max_per_img=cfg.box_detections_per_img)
    return model


def _drop_download_inits(node: Any) -> None:
    """Remove ``init_cfg=dict(type='Pretrained', checkpoint=...)`` entries (they download weights)."""
    if isinstance(node, dict):
        init = node.get("init_cfg")
        if isinstance(init, dict) and init.get("type") == "Pretrained":
            node["init_cfg"] = None
        for v in node.values():
            _drop_download_inits(v)
    elif isinstance(node, list):
        for v in node:
            _drop_download_inits(v)


# --------------------------------------------------------------------------- model


def build_model(model_cfg: dict):
    """An mmdet detector from a ``model`` dict, initialised, with probability rows at inference."""
    require_mmdet()
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict

    model = MODELS.build(ConfigDict(copy.deepcopy(model_cfg)))  # mmdet reads train_cfg.rpn etc. as attributes
    with _quiet_mmengine():  # init_weights logs one line per parameter
        model.init_weights()
    add_probability_rows(model.roi_head.bbox_head)
    return model


@contextlib.contextmanager
def _quiet_mmengine():
    """mmengine's current logger at WARNING for the duration (its INFO output is per-parameter
    initialisation tables)."""
    from mmengine.logging import MMLogger

    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def add_probability_rows(bbox_head) -> None:
    """Make ``bbox_head`` return ``probs [N, C+1]`` (vidal order: background first) per kept detection.

    mmdet's per-image post-processing, called without a test config, decodes and rescales every
    proposal's boxes and returns its softmax row without NMS; the wrapper then runs mmdet's own
    ``multiclass_nms`` with ``return_inds=True`` (candidate ``k`` of the flattened ``[N * C]`` list
    belongs to proposal ``k // C``) and attaches that proposal's row to each kept detection.
    """
    import torch
    from mmdet.models.layers import multiclass_nms
    from mmengine.structures import InstanceData

    original = bbox_head._predict_by_feat_single
    num_classes = bbox_head.num_classes

    def predict_single(roi, cls_score, bbox_pred, img_meta, rescale=False, rcnn_test_cfg=None):
        raw = original(roi, cls_score, bbox_pred, img_meta, rescale=rescale, rcnn_test_cfg=None)
        if rcnn_test_cfg is None:  # mmdet's own "no NMS" path (test-time augmentation)
            return raw
        out = InstanceData()
        scores = raw.scores
        if roi.shape[0] == 0 or scores.numel() == 0:
            dev = roi.device
            out.bboxes = torch.zeros((0, 4), device=dev)
            out.scores = torch.zeros((0,), device=dev)
            out.labels = torch.zeros((0,), dtype=torch.long, device=dev)
            out.probs = torch.zeros((0, num_classes + 1), device=dev)
            return out
        dets, labels, inds = multiclass_nms(raw.bboxes, scores, rcnn_test_cfg.score_thr, rcnn_test_cfg.nms,
                                            rcnn_test_cfg.max_per_img, return_inds=True)
        rows = scores[inds // num_classes]                          # [K, C+1], background last
        out.bboxes = dets[:, :4]
        out.scores = dets[:, -1]
        out.labels = labels
        out.probs = torch.cat([rows[:, num_classes:], rows[:, :num_classes]], dim=1)
        return out

    bbox_head._predict_by_feat_single = predict_single


def load_mmdet_weights(model, path: str | Path) -> dict[str, int]:
    """Load an mmdet checkpoint (``{"state_dict": ...}`` or a bare state dict) into every tensor of
    the same name and shape; ``{"loaded": n, "skipped": m}``. A file with no matching tensor is a
    one-line ``ValueError`` naming it."""
    ckpt = read_torch_file(path, "mmdet checkpoint")  # weights_only: nothing in the file executes
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: not an mmdet checkpoint (no state_dict)")
    own = model.state_dict()
    match = {k: v for k, v in sd.items() if k in own and hasattr(v, "shape") and v.shape == own[k].shape}
    if not match:
        raise ValueError(f"{path}: no tensor matches this model by name and shape; is it a checkpoint of "
                         f"{type(model).__name__} for the same mmdet config?")
    model.load_state_dict(match, strict=False)
    return {"loaded": len(match), "skipped": len(sd) - len(match)}


# --------------------------------------------------------------------------- data


def _resize(image: np.ndarray, height: int, max_width: int, scale_height: int | None = None
            ) -> tuple[np.ndarray, float, float]:
    """Fixed-height resize (aspect kept, width capped); returns ``(image, sx, sy)``. With
    ``scale_height`` (a crop kept at its frame's scale: augment.scale_crop) the image is scaled
    by ``height / scale_height`` instead."""
    import cv2

    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {a.shape}")
    h, w = a.shape[:2]
    scale = min(height / (scale_height or h), max_width / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        a = cv2.resize(a, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return a, nw / w, nh / h


def to_mmdet_sample(image: np.ndarray, cfg: MMDetConfig, *, boxes=None, labels=None, hflip: bool = False,
                    scale_height: int | None = None):
    """(uint8 BGR tensor ``[3, h, w]``, ``DetDataSample``): what mmdet's data preprocessor expects.

    The image is resized to ``cfg.height`` (a crop with ``scale_height``: scaled by
    ``cfg.height / scale_height``); ``img_shape`` / ``ori_shape`` / ``scale_factor`` let mmdet map
    predictions back to input pixels. ``labels`` are vidal ids ``1..C`` (mmdet: ``0..C-1``).
    """
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    h, w = np.asarray(image).shape[:2]
    img, sx, sy = _resize(image, cfg.height, cfg.max_width, scale_height)
    nh, nw = img.shape[:2]
    if hflip:
        img = img[:, ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))  # RGB -> BGR, CHW
    sample = DetDataSample(metainfo={"img_shape": (nh, nw), "ori_shape": (h, w), "scale_factor": (sx, sy),
                                     "flip": hflip})
    if boxes is not None:
        b = np.asarray(boxes, np.float32).reshape(-1, 4) * np.array([sx, sy, sx, sy], np.float32)
        if hflip:
            b = np.stack([nw - b[:, 2], b[:, 1], nw - b[:, 0], b[:, 3]], axis=1)
        gt = InstanceData()
        gt.bboxes = torch.from_numpy(np.ascontiguousarray(b, np.float32))
        gt.labels = torch.as_tensor(np.asarray(labels, np.int64).reshape(-1) - 1)
        sample.gt_instances = gt
    return tensor, sample


def _predictions(sample, num_classes: int) -> Predictions:
    inst = sample.pred_instances
    h, w = sample.metainfo["ori_shape"]
    boxes = inst.bboxes.detach().cpu().numpy().astype(np.float32).reshape(-1, 4)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    probs = inst.probs.detach().cpu().numpy() if "probs" in inst else None
    if probs is None:
        raise RuntimeError("mmdet predictions carry no probability rows: the box head was not wrapped by "
                           "add_probability_rows()")
    if probs.shape[1] != num_classes + 1:
        raise RuntimeError(f"model has {probs.shape[1] - 1} classes, expected {num_classes}")
    return Predictions(boxes, inst.scores.detach().cpu().numpy(), inst.labels.detach().cpu().numpy() + 1, probs)


# --------------------------------------------------------------------------- Detector


@DETECTORS.register(BACKEND)
class MMDetDetector(TorchDetector):
    """:class:`vidal.detection.base.Detector` over an MMDetection two-stage detector (training,
    prediction and checkpoints: :class:`~vidal.detection.torch_detector.TorchDetector`)."""

    backend = BACKEND

    def __init__(self, *, class_names: Sequence[str], config: MMDetConfig | None = None,
                 model_cfg: dict | None = None):
        require_mmdet()
        config = config or MMDetConfig()
        self.model_cfg = model_cfg if model_cfg is not None else model_config(config, len(class_names))
        super().__init__(class_names=class_names, config=config)

    @staticmethod
    def check_config(*, profile: str | None = None, fields: dict[str, Any] | None = None) -> MMDetConfig:
        """The config, with mmdet importable and the mmdet config file found, without building a
        model (the AL loop calls this before any training)."""
        if profile not in (None, "default"):
            raise ValueError(f"the mmdet backend has no profile {profile!r}; its model comes from detector.config")
        cfg = MMDetConfig.from_dict(dict(fields or {}))
        require_mmdet()
        resolve_config_path(cfg.config)
        if cfg.weights and not Path(cfg.weights).is_file():
            raise ValueError(f"detector.weights: mmdet checkpoint {cfg.weights} not found")
        return cfg

    def build_model(self):
        import torch

        torch.manual_seed(self.config.seed)
        model = build_model(self.model_cfg)
        if self.config.weights:
            self.weights_report = load_mmdet_weights(model, self.config.weights)
        return model

    @property
    def architecture(self) -> str | None:
        return self.model_cfg["backbone"].get("type")

    # ---- data
    def _batch(self, images, *, frames: Sequence[dict] | None = None, flips: Sequence[bool] | None = None,
               training: bool):
        inputs, samples = [], []
        for k, image in enumerate(images):
            kw = {}
            if frames is not None:
                kw = {"boxes": frames[k]["boxes"], "labels": frames[k]["labels"], "hflip": bool(flips[k]),
                      "scale_height": frames[k].get("scale_height")}
            t, s = to_mmdet_sample(image, self.config, **kw)
            inputs.append(to_device(t, self.device))
            samples.append(s)
        return self.model.data_preprocessor({"inputs": inputs, "data_samples": samples}, training)

    def batch_losses(self, batch) -> dict:
        chunk, flips = batch
        data = self._batch([f["image"] for f in chunk], frames=chunk, flips=flips, training=True)
        raw = self.model(**data, mode="loss")
        # mmdet returns lists of per-level terms for some heads; vidal's history wants one tensor each
        return {k: (sum(v) if isinstance(v, (list, tuple)) else v) for k, v in raw.items() if "loss" in k}

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Predictions]:
        data = self._batch(images, training=False)
        return [_predictions(r, self.num_classes) for r in self.model(**data, mode="predict")]

    def embed_batch(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray]):
        from vidal.detection.embeddings import embed_mmdet_batch

        return embed_mmdet_batch(self, images, boxes)

    # ---- checkpoints
    def checkpoint_extra(self) -> dict[str, Any]:
        import mmdet

        return {"mmdet_model": self.model_cfg, "mmdet": mmdet.__version__}

    def check_checkpoint(self, path: str | Path, ckpt: dict) -> None:
        if ckpt["num_classes"] != self.num_classes:
            raise ValueError(f"{path}: checkpoint has {ckpt['num_classes']} classes; the config asks for "
                             f"{self.num_classes}")
        # the architecture is the state dict's key set and shapes (test_cfg thresholds may differ)
        check_state_dict(ckpt["state_dict"], self.model.state_dict(), path,
                         f"a checkpoint of this mmdet model ({self.config.config})")

    @classmethod
    def from_checkpoint(cls, path: str | Path, ckpt: dict, *, num_classes: int | None = None,
                        **overrides: Any) -> MMDetDetector:
        """The detector a checkpoint describes (its mmdet model dict is stored in it)."""
        if num_classes is not None and num_classes != ckpt["num_classes"]:
            raise ValueError(f"{path}: checkpoint has {ckpt['num_classes']} classes; expected {num_classes}")
        overrides.pop("backbone", None)
        cfg = checkpoint_config(MMDetConfig, ckpt, path, weights=None, **overrides)
        return cls(class_names=ckpt["class_names"], config=cfg, model_cfg=ckpt["mmdet_model"])
