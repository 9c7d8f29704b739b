"""Record a real detector's loss history, prediction bytes and weight bytes as JSON, to show that a
refactor of the detector code changes nothing (issue 13): run it before and after on the same
machine and compare the two files with ``cmp``. Floating-point results differ between machines,
so this is a check, not a test (tests/test_loop_pinned.py is the permanent one).

    python tools/pins/pin_detector.py DATASET.h5 OUT.json                         # torchvision, two configs
    .venv-mmdet/bin/python tools/pins/pin_detector.py DATASET.h5 OUT.json mmdet   # the tiny mmdet R18 model

Each run: train 2 epochs on 8 frames (lr 0.01, milestone 1), 2 more iterations on 5 frames with
batch 2, predict 4 frames, save, load, predict 2 frames with the loaded model.
"""
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from vidal.data import VideoDataset


def fingerprint(det, cls, frames, path) -> dict:
    """The run described in the module docstring; sha256 of predictions and weights, the losses."""
    hist = det.train(frames, epochs=2, lr=0.01, milestones=(1,))
    hist += det.train(frames[:5], iterations=2, batch_size=2)
    preds = det.predict([f["image"] for f in frames[:4]])
    det.save(path)
    again = cls.load(path)
    preds += again.predict([f["image"] for f in frames[:2]])
    again.load_weights(path)
    h = hashlib.sha256()
    for p in preds:
        for a in (p.boxes, p.scores, p.labels, p.probs):
            h.update(np.ascontiguousarray(a).tobytes())
    state = hashlib.sha256(b"".join(v.numpy().tobytes() for v in det.model.state_dict().values())).hexdigest()
    return dict(hist=[round(r["loss"], 10) for r in hist], preds=h.hexdigest(), state=state)


def main(dataset: str, out_path: str, backend: str = "torchvision") -> None:
    torch.set_num_threads(1)
    ds = VideoDataset(dataset)
    frames = [ds[i] for i in range(0, 24, 3)]
    tmp = tempfile.mkdtemp(prefix="vidal-pin-")
    classes = list(ds.classes)
    if backend == "mmdet":
        from vidal.detection.mmdet_backend import MMDetConfig, MMDetDetector

        tiny = Path(__file__).resolve().parents[2] / "configs/mmdet/faster-rcnn_r18-tiny.py"
        cfg = MMDetConfig(config=str(tiny), height=64, seed=2, device="cpu", batch_size=4, ema_decay=0.5,
                          repeat_threshold=0.5)
        torch.manual_seed(0)
        out = fingerprint(MMDetDetector(class_names=classes, config=cfg), MMDetDetector, frames, f"{tmp}/pin.pt")
    else:
        from vidal.detection.torchvision_frcnn import FasterRCNNDetector, profile

        out = {}
        for variant, kw in [("plain", {}),
                            ("ema_rf", dict(ema_decay=0.9, repeat_threshold=0.5, photometric=0.5, crop=0.8))]:
            torch.manual_seed(0)
            det = FasterRCNNDetector(class_names=classes, config=profile("cpu", height=160, seed=3, **kw))
            out[variant] = fingerprint(det, FasterRCNNDetector, frames, f"{tmp}/pin_{variant}.pt")
    Path(out_path).write_text(json.dumps(out, indent=1))
    print(out_path, hashlib.sha256(Path(out_path).read_bytes()).hexdigest()[:16])


if __name__ == "__main__":
    main(*sys.argv[1:])
