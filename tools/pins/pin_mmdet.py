"""Record a real mmdet (run with .venv-mmdet/bin/python) detector's loss history, prediction bytes and weight bytes as JSON,
to show a refactor of the detector code changes nothing (issue 13): run it before and after on the
same machine and compare the two files with ``cmp``. Floating-point results differ between
machines, so this is a check, not a test (tests/test_loop_pinned.py is the permanent one).

    python tools/pins/pin_mmdet.py DATASET.h5 OUT.json
"""
import hashlib
import json
import sys
import tempfile

import numpy as np, torch
torch.set_num_threads(1)
from vidal.data import VideoDataset
from vidal.detection.mmdet_backend import MMDetDetector, MMDetConfig
ds = VideoDataset(sys.argv[1])
tmp = tempfile.mkdtemp(prefix="vidal-pin-")
frames = [ds[i] for i in range(0, 24, 3)]
cfg = MMDetConfig(config=str(__import__("pathlib").Path(__file__).resolve().parents[2] / "configs/mmdet/faster-rcnn_r18-tiny.py"), height=64, seed=2, device="cpu", batch_size=4, ema_decay=0.5, repeat_threshold=0.5)
torch.manual_seed(0)
det = MMDetDetector(class_names=list(ds.classes), config=cfg)
hist = det.train(frames, epochs=2, lr=0.01, milestones=(1,))
hist += det.train(frames[:5], iterations=2, batch_size=2)
preds = det.predict([f["image"] for f in frames[:4]])
det.save(tmp + "/pin_mm.pt")
det2 = MMDetDetector.load(tmp + "/pin_mm.pt")
preds += det2.predict([f["image"] for f in frames[:2]])
det2.load_weights(tmp + "/pin_mm.pt")
h = hashlib.sha256()
for p in preds:
    for a in (p.boxes, p.scores, p.labels, p.probs):
        h.update(np.ascontiguousarray(a).tobytes())
sd = hashlib.sha256(b"".join(v.numpy().tobytes() for v in det.model.state_dict().values())).hexdigest()
out = dict(hist=[round(r["loss"], 10) for r in hist], preds=h.hexdigest(), state=sd)
json.dump(out, open(sys.argv[2], "w"), indent=1)
print(out["preds"][:12], out["state"][:12], out["hist"][-1], len(preds))
