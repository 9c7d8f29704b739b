"""Record a real torchvision detector's loss history, prediction bytes and weight bytes as JSON,
to show a refactor of the detector code changes nothing (issue 13): run it before and after on the
same machine and compare the two files with ``cmp``. Floating-point results differ between
machines, so this is a check, not a test (tests/test_loop_pinned.py is the permanent one).

    python tools/pins/pin_detector.py DATASET.h5 OUT.json
"""
import sys, json, hashlib
import tempfile

import numpy as np, torch
torch.set_num_threads(1)
from vidal.data import VideoDataset
from vidal.detection.torchvision_frcnn import FasterRCNNDetector, profile

ds = VideoDataset(sys.argv[1])
tmp = tempfile.mkdtemp(prefix="vidal-pin-")
frames = [ds[i] for i in range(0, 24, 3)]
out = {}
for variant, kw in [("plain", {}), ("ema_rf", dict(ema_decay=0.9, repeat_threshold=0.5, photometric=0.5, crop=0.8))]:
    torch.manual_seed(0)
    det = FasterRCNNDetector(class_names=list(ds.classes), config=profile("cpu", height=160, seed=3, **kw))
    hist = det.train(frames, epochs=2, lr=0.01, milestones=(1,), iterations=None)
    hist2 = det.train(frames[:5], iterations=2, batch_size=2)
    preds = det.predict([f["image"] for f in frames[:4]])
    det.save(f"{tmp}/pin_{variant}.pt")
    det2 = FasterRCNNDetector.load(f"{tmp}/pin_{variant}.pt")
    preds2 = det2.predict([f["image"] for f in frames[:2]])
    h = hashlib.sha256()
    for p in preds + preds2:
        for a in (p.boxes, p.scores, p.labels, p.probs):
            h.update(np.ascontiguousarray(a).tobytes())
    sd = hashlib.sha256(b"".join(v.numpy().tobytes() for v in det.model.state_dict().values())).hexdigest()
    out[variant] = dict(hist=[round(r["loss"], 10) for r in hist + hist2], preds=h.hexdigest(), state=sd)
json.dump(out, open(sys.argv[2], "w"), indent=1)
print({k: (v["preds"][:12], v["state"][:12], v["hist"][-1]) for k, v in out.items()})
