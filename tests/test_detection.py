"""Tests of vidal/registry.py and vidal/detection (Predictions contract, torchvision Faster R-CNN
backend: fixed-height resize, softmax rows of kept detections, training, checkpoints, loading
torchvision/COCO state dicts from a file). Tiny images and random weights: no download."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidal.detection import (
    CHECKPOINT_FORMAT,
    Detector,
    FasterRCNNConfig,
    FasterRCNNDetector,
    Predictions,
    build_faster_rcnn,
    load_detector,
    profile,
)
from vidal.registry import ACQUISITIONS, DETECTORS, TRACKERS, Registry

W, H = 96, 64
CLASSES = ["car", "bike"]


def tiny_config(backbone="mobilenet_v3_fpn", **kw) -> FasterRCNNConfig:
    # score threshold 0 so that an untrained model still returns detections to check
    return profile("cpu", **{"backbone": backbone, "height": H, "box_score_thresh": 0.0, "hflip": 0.0,
                             "device": "cpu", **kw})


def make_frames(n=4, seed=0) -> list[dict]:
    """A bright rectangle (class 1) and a dark one (class 2) on grey: trivially learnable."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        img = np.full((H, W, 3), 128, np.uint8)
        x, y = rng.integers(2, 30), rng.integers(2, 20)
        img[y:y + 30, x:x + 30] = 250
        img[5:25, 70:90] = 5
        frames.append({"image": img, "boxes": np.array([[x, y, x + 30, y + 30], [70, 5, 90, 25]], np.float32),
                           "labels": np.array([1, 2], np.int64)})
    # a frame without objects must train too
    frames.append({"image": np.full((H, W, 3), 128, np.uint8), "boxes": np.zeros((0, 4), np.float32),
                       "labels": np.zeros(0, np.int64)})
    return frames


@pytest.fixture(autouse=True)
def _threads(torch_two_threads):
    yield


@pytest.fixture(scope="module")
def mobilenet_det() -> FasterRCNNDetector:
    torch.manual_seed(0)
    return FasterRCNNDetector(class_names=CLASSES, config=tiny_config())


# --------------------------------------------------------------------------- registry


def test_registry_decorator_duplicates_and_unknown_names():
    reg = Registry("widget")

    @reg.register("a")
    def build_a():
        return "A"

    @reg.register()
    def b():
        return "B"

    assert reg.build("a") == "A" and reg.get("b")() == "B" and reg.names() == ["a", "b"] and "a" in reg
    with pytest.raises(ValueError, match="'a' is already registered"):
        reg.register("a")(lambda: None)
    with pytest.raises(KeyError, match="unknown widget 'c'; valid names: a, b"):
        reg.get("c")
    assert DETECTORS.get("torchvision_frcnn") is FasterRCNNDetector
    assert {TRACKERS.kind, ACQUISITIONS.kind} == {"tracker", "acquisition"}


# --------------------------------------------------------------------------- predictions


def test_predictions_dataclass_checks_shapes():
    p = Predictions.empty(3)
    assert len(p) == 0 and p.probs.shape == (0, 4) and p.num_classes == 3
    with pytest.raises(ValueError, match="inconsistent shapes"):
        Predictions(np.zeros((2, 4)), np.zeros(2), np.ones(2), np.zeros((1, 3)))


def test_prediction_contract(mobilenet_det):
    det = mobilenet_det
    assert isinstance(det, Detector)
    images = [f["image"] for f in make_frames(2)] + [np.zeros((40, 150, 3), np.uint8)]  # other size too
    preds = det.predict(images)
    assert len(preds) == len(images) == 4 and det.predict([]) == []
    for img, p in zip(images, preds):
        h, w = img.shape[:2]
        n = len(p)
        assert n > 0
        assert p.boxes.dtype == np.float32 and p.boxes.shape == (n, 4)
        assert p.scores.dtype == np.float32 and p.scores.shape == (n,)
        assert p.labels.dtype == np.int64 and p.labels.shape == (n,)
        assert p.probs.dtype == np.float32 and p.probs.shape == (n, len(CLASSES) + 1)
        np.testing.assert_allclose(p.probs.sum(1), 1.0, atol=1e-5)
        assert ((p.labels >= 1) & (p.labels <= len(CLASSES))).all()
        np.testing.assert_allclose(p.scores, p.probs[np.arange(n), p.labels], rtol=0, atol=1e-6)
        assert (p.boxes[:, 0] >= 0).all() and (p.boxes[:, 2] <= w).all()
        assert (p.boxes[:, 1] >= 0).all() and (p.boxes[:, 3] <= h).all()
        assert (p.boxes[:, 2] > p.boxes[:, 0]).all() and (p.boxes[:, 3] > p.boxes[:, 1]).all()
        assert n <= det.config.box_detections_per_img


def test_fixed_height_resize_and_boxes_back_in_input_pixels():
    model = build_faster_rcnn(num_classes=2, backbone="resnet18_fpn", config=tiny_config(height=32))
    model.eval()
    img = torch.rand(3, 64, 150)
    batch, _ = model.transform([img])
    assert batch.image_sizes == [(32, 75)]  # height fixed, aspect ratio kept
    model.transform.max_width = 60           # width cap wins for very wide frames
    assert model.transform([img])[0].image_sizes == [(26, 60)]
    model.transform.max_width = 2000
    # postprocess maps boxes from resized to original pixels
    out = model.transform.postprocess([{"boxes": torch.tensor([[0.0, 0.0, 75.0, 32.0]])}], [(32, 75)], [(64, 150)])
    torch.testing.assert_close(out[0]["boxes"], torch.tensor([[0.0, 0.0, 150.0, 64.0]]))


def test_per_image_input_norm_sees_a_darkened_frame_as_the_original(tmp_path):
    torch.manual_seed(0)
    det = FasterRCNNDetector(class_names=CLASSES, config=tiny_config(backbone="resnet_tiny_fpn", input_norm="image"))
    img = make_frames(1)[0]["image"]
    night = (img.astype(np.float32) * 0.3).round().astype(np.uint8)   # synth night frames: ~0.35x as bright
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    a, _ = det.model.transform([x])
    b, _ = det.model.transform([x * 0.3])
    torch.testing.assert_close(a.tensors, b.tensors, atol=1e-4, rtol=1e-4)
    day_pred, night_pred = det.predict([img, night])
    assert len(day_pred) > 0
    # the same detections up to the uint8 rounding of the dark frame (untrained: near-tied scores
    # may reorder, so compare the best one)
    assert night_pred.scores.max() == pytest.approx(day_pred.scores.max(), abs=1e-3)
    np.testing.assert_allclose(day_pred.boxes[day_pred.scores.argmax()], night_pred.boxes[night_pred.scores.argmax()],
                               atol=0.5)
    det.save(tmp_path / "n.pth")                                               # rebuilt with the same norm
    assert load_detector(tmp_path / "n.pth").model.transform.per_image
    fixed = FasterRCNNDetector(class_names=CLASSES, config=tiny_config(backbone="resnet_tiny_fpn"))
    assert not torch.allclose(fixed.model.transform([x])[0].tensors, fixed.model.transform([x * 0.3])[0].tensors)
    with pytest.raises(ValueError, match="input_norm must be 'dataset'"):
        tiny_config(input_norm="per-image")


def test_score_threshold_and_max_detections_are_applied():
    det = FasterRCNNDetector(class_names=CLASSES, config=tiny_config(box_detections_per_img=5))
    p = det.predict([make_frames(1)[0]["image"]])[0]
    assert 0 < len(p) <= 5
    det.model.roi_heads.score_thresh = 0.99  # untrained: nothing that confident
    assert len(det.predict([make_frames(1)[0]["image"]])[0]) == 0


# --------------------------------------------------------------------------- training


def _loss(det, frames):
    from vidal.detection.torchvision_frcnn import frame_to_sample

    torch.manual_seed(123)  # same RPN / RoI sampling for both measurements
    det.model.train()
    samples = [frame_to_sample(f) for f in frames]
    with torch.no_grad():
        losses = det.model([s[0] for s in samples], [s[1] for s in samples])
    return float(sum(losses.values()))


def test_training_reduces_loss_and_changes_weights():
    torch.manual_seed(0)
    det = FasterRCNNDetector(class_names=CLASSES, config=tiny_config(backbone="resnet18_fpn", norm="frozen_bn"))
    frames = make_frames(2)
    before = {k: v.clone() for k, v in det.model.state_dict().items()}
    loss0 = _loss(det, frames)
    hist = det.train(frames, epochs=10, iterations=6, batch_size=2, lr=0.01, milestones=[1], gamma=0.5)
    assert len(hist) == 6 and all(np.isfinite(r["loss"]) for r in hist)
    assert [r["lr"] for r in hist[:2]] == [0.01, 0.01] and hist[2]["lr"] == pytest.approx(0.005)  # step schedule
    loss1 = _loss(det, frames)
    assert loss1 < 0.9 * loss0, (loss0, loss1)
    after = det.model.state_dict()
    assert not torch.equal(before["roi_heads.box_predictor.cls_score.weight"], after["roi_heads.box_predictor.cls_score.weight"])
    assert not torch.equal(before["backbone.body.conv1.weight"], after["backbone.body.conv1.weight"])


def test_hflip_flips_boxes_with_image():
    from vidal.detection.torchvision_frcnn import frame_to_sample

    f = make_frames(1)[0]
    img, tgt = frame_to_sample(f, hflip=True)
    torch.testing.assert_close(img, frame_to_sample(f)[0].flip(-1))
    x1, y1, x2, y2 = f["boxes"][1]
    torch.testing.assert_close(tgt["boxes"][1], torch.tensor([W - x2, y1, W - x1, y2]))


# --------------------------------------------------------------------------- checkpoints


def test_save_load_round_trip_identical_predictions(tmp_path, mobilenet_det):
    det = mobilenet_det
    path = tmp_path / "ckpt.pt"
    det.save(path)
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["format"] == CHECKPOINT_FORMAT and ckpt["backbone"] == "mobilenet_v3_fpn"
    assert ckpt["num_classes"] == 2 and ckpt["class_names"] == CLASSES and ckpt["config"]["height"] == H
    images = [f["image"] for f in make_frames(2)]
    for loaded in (FasterRCNNDetector.load(path), load_detector(path, num_classes=2)):
        assert loaded.class_names == CLASSES and loaded.config == det.config
        for a, b in zip(det.predict(images), loaded.predict(images)):
            for k in ("boxes", "scores", "labels", "probs"):
                np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    # fine-tuning start from a checkpoint
    fresh = FasterRCNNDetector(class_names=CLASSES, config=tiny_config())
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(images[:1])[0].probs, det.predict(images[:1])[0].probs)
    # a checkpoint whose saved config this version cannot rebuild: one line naming the file
    ckpt["config"]["retired_field"] = 1.0
    torch.save(ckpt, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"old\.pt: its saved config does not fit this vidal version: "
                                         r"unknown FasterRCNNConfig keys \['retired_field'\]"):
        load_detector(tmp_path / "old.pt")


def test_wrong_class_count_or_backbone_is_one_clear_line(tmp_path):
    det = FasterRCNNDetector(class_names=["a", "b", "c"], config=tiny_config(backbone="resnet18_fpn"))
    path = tmp_path / "ckpt.pt"
    det.save(path)
    msg = (f"{path}: checkpoint has backbone resnet18_fpn and 3 classes; "
           f"the config asks for mobilenet_v3_fpn with 4 classes")
    with pytest.raises(ValueError) as e:
        FasterRCNNDetector.load(path, backbone="mobilenet_v3_fpn", num_classes=4)
    assert str(e.value) == msg and "\n" not in str(e.value)
    with pytest.raises(ValueError, match="checkpoint has backbone resnet18_fpn and 3 classes; "
                                         "the config asks for resnet18_fpn with 4 classes"):
        FasterRCNNDetector.load(path, num_classes=4)
    other = FasterRCNNDetector(class_names=["a", "b"], config=tiny_config(backbone="resnet18_fpn"))
    with pytest.raises(ValueError, match="asks for resnet18_fpn with 2 classes"):
        other.load_weights(path)
    torch.save({"format": "something-else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a vidal-detector-v1 checkpoint"):
        load_detector(tmp_path / "bad.pt")


def test_config_is_strict_and_validated():
    with pytest.raises(ValueError, match="unknown FasterRCNNConfig keys"):
        FasterRCNNConfig.from_dict({"lr": 0.1, "learning_rate": 0.1})
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        FasterRCNNConfig(backbone="vgg")
    with pytest.raises(ValueError, match="unknown profile"):
        profile("gpu-xl")
    cfg = FasterRCNNConfig()  # thesis 2.5.1 SYNTHIA-AL schedule
    assert (cfg.lr, cfg.momentum, cfg.epochs, cfg.milestones, cfg.gamma, cfg.batch_size, cfg.height) == \
        (0.02, 0.9, 10, (5, 7), 0.2, 12, 300)
    with pytest.raises(ValueError, match="weights are never downloaded"):
        build_faster_rcnn(num_classes=2, weights="/nonexistent/coco.pt")


# --------------------------------------------------------------------------- torchvision / COCO weights


def test_resnet50_coco_layout_weights_load_from_file(tmp_path):
    """A 91-class torchvision fasterrcnn_resnet50_fpn state dict (random, ~170 MB in tmp_path)
    loads key for key; the box predictor is replaced for C classes."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    coco = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    sd = {k: v for k, v in coco.state_dict().items() if not k.endswith("num_batches_tracked")}
    del coco
    path = tmp_path / "coco_r50.pth"
    torch.save(sd, path)
    model = build_faster_rcnn(num_classes=3, backbone="resnet50_fpn", weights=path, config=tiny_config())
    own = model.state_dict()
    assert own["roi_heads.box_predictor.cls_score.weight"].shape == (4, 1024)
    assert own["roi_heads.box_predictor.bbox_pred.weight"].shape == (16, 1024)
    same = [k for k in sd if not k.startswith("roi_heads.box_predictor.")]
    assert len(same) > 250 and all(torch.equal(own[k], sd[k]) for k in same)
    # pretrained layout: frozen BN, first stages frozen (torchvision's defaults for fine-tuning)
    assert not model.backbone.body.conv1.weight.requires_grad and model.backbone.body.layer4[0].conv1.weight.requires_grad


def test_mobilenet_weights_load_and_wrong_backbone_weights_fail(tmp_path):
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    tv = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path / "mnv3.pth"
    torch.save({"model": tv.state_dict()}, path)  # torchvision references' checkpoint layout
    det = FasterRCNNDetector(class_names=CLASSES, config=tiny_config(weights=str(path)))
    own = det.model.state_dict()
    for k, v in tv.state_dict().items():
        if k in own and not k.startswith("roi_heads.box_predictor."):
            assert torch.equal(own[k], v), k
    assert det.config.norm == "frozen_bn" and det.config.trainable_layers == 3
    p = det.predict([make_frames(1)[0]["image"]])[0]
    assert p.probs.shape[1] == 3
    with pytest.raises(ValueError, match="not a torchvision Faster R-CNN state dict for this backbone"):
        build_faster_rcnn(num_classes=2, backbone="resnet18_fpn", weights=path, config=tiny_config())



def test_the_detector_protocol_names_every_member_callers_use():
    from tests.double_detector import DoubleDetector

    used = {"backend", "num_classes", "class_names", "config", "from_config", "check_config", "train", "predict",
            "save", "load", "load_weights"}
    named = set(Detector.__annotations__) | {k for k in vars(Detector) if not k.startswith('_')}
    assert used <= named
    assert isinstance(DoubleDetector(class_names=["a", "b"]), Detector)


def test_a_backend_is_a_batch_loss_and_a_batch_prediction_on_the_base_class(tmp_path):
    """The whole of a toy backend on TorchDetector (tests/toy_backend.py: config, model, batch loss,
    batch prediction, checkpoint check). Training, prediction in batches, save / load / load_weights
    come from the base."""
    from toy_backend import FIELDS, FRAMES, OneBox, OneBoxConfig

    from vidal.registry import DETECTORS

    DETECTORS.register("one_box_test")(OneBox)
    try:
        frames = FRAMES
        det = OneBox.from_config(class_names=["thing"], fields={**FIELDS, "epochs": 60})
        assert isinstance(det, Detector)
        rows = det.train(frames)
        assert len(rows) == 60 and rows[-1]["loss"] < 0.1 * rows[0]["loss"]
        assert len(det.train(frames, epochs=2, batch_size=2)) == 6          # overrides of the schedule
        images = [f["image"] for f in frames]
        preds = det.predict(images)                                           # 3 batches of 2
        assert len(preds) == 5 and not det.model.training
        det.save(tmp_path / "m.pt")
        again = OneBox.load(tmp_path / "m.pt")
        assert all(np.array_equal(a.boxes, b.boxes) for a, b in zip(preds, again.predict(images)))
        from vidal.detection.base import load_detector

        assert isinstance(load_detector(tmp_path / "m.pt"), OneBox)
        other = OneBox(class_names=["a", "b"], config=OneBoxConfig())
        with pytest.raises(ValueError, match="m.pt: 1 classes, not 2"):
            other.load_weights(tmp_path / "m.pt")
    finally:
        DETECTORS._items.pop("one_box_test", None)
