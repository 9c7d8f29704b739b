"""Run under ``torchrun`` by tests/test_distributed.py (or as one plain process): what each rank
holds, written to files the test compares.

    ddp_probe.py train CONFIG OUT BATCH ITERS   train the config's detector as tools/train.py does
                                                (vidal.training.train_detector, work dir OUT/work),
                                                capped at ITERS steps of BATCH frames per rank;
                                                record the hash of the parameters after every step
    ddp_probe.py al CONFIG WORK [--resume]      an AL run with the scripted double detector
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _hash(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(config: str, out: str, batch: int, iters: int) -> None:
    import torch

    from vidal import distributed
    from vidal.build import build_spec
    from vidal.config import load_config
    from vidal.detection import schedule
    from vidal.training import train_detector

    ranks = distributed.init("ddp" if "RANK" in os.environ else "none")
    torch.set_num_threads(1)
    spec = build_spec(load_config(config))
    train_set = spec.open("train")
    torch.manual_seed(0)
    det = spec.detector.build(train_set.classes, seed=0)
    params = [p for p in det.model.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    steps: list[str] = []
    step = schedule.optimizer_step

    def recording(*args, **kwargs):
        row = step(*args, **kwargs)
        steps.append(_hash(params))
        return row

    history: list[dict] = []
    train = det.train

    def capped(frames, **kwargs):  # the schedule's batch size and an iteration cap; the loss rows kept
        history.extend(train(frames, iterations=iters, batch_size=batch, **kwargs))
        return history

    det.train = capped
    schedule.optimizer_step = recording
    out = Path(out)
    try:  # what tools/train.py runs: rank 0 alone evaluates and writes the work dir
        train_detector(det, train_set, work_dir=out / "work", test_set=spec.open("test"), progress=False,
                       log=lambda line: print(f"LOG {line}", flush=True))
    finally:
        schedule.optimizer_step = step
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{ranks.rank}.json").write_text(json.dumps({
        "world_size": ranks.world_size, "steps": steps, "state": _hash(det.model.state_dict().values()),
        "losses": [h["loss"] for h in history]}))
    if ranks.is_main:
        torch.save({"start": start, "end": [p.detach().clone() for p in params]}, out / "params.pt")
    distributed.shutdown()


def al(config: str, work: str, resume: bool) -> None:
    import torch

    from double_detector import registered
    from vidal import distributed
    from vidal.config import load_config
    from vidal.loop import Experiment

    distributed.init("ddp")
    torch.set_num_threads(1)
    with registered():
        Experiment(load_config(config), work, 0, resume=resume, progress=False, threads=1).run()
    distributed.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        al(sys.argv[2], sys.argv[3], "--resume" in sys.argv)
