"""Training of the SiamFC network (Bertinetto et al. 2016, section 2.2) on a vidal dataset's
ground-truth tracks; used by ``tools/train_siamfc.py`` (the tracker class only tracks).

Pairs: an annotated box (exemplar) and a box of the same track id at most ``max_gap`` frames
away (search), both from one video. The exemplar crop (127) is centred on its box with context
0.5; the search crop (255) has the side ``255/127`` times the search box's exemplar side and is
centred on the search box moved by a random shift of up to ``max_shift`` crop pixels, so the
target is not always in the middle (the reference port's random crop augmentation). Labels on the
17x17 response map: 1 within ``r_pos = 16`` crop pixels (2 cells) of the target, 0 elsewhere;
the logistic loss is balanced (half the weight on positives, half on negatives), paper eq. 2-3.
SGD (momentum 0.9, weight decay 5e-4), learning rate decaying geometrically from ``lr`` to
``lr_end`` over the epochs, as the reference port.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from vidal.tracking.siamfc import EXEMPLAR_SIZE, INSTANCE_SIZE, TOTAL_STRIDE, SiamFCNet, context_sides, crops


def track_index(dataset, *, min_size: float = 4.0) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Per video: ``(video, frame_index [M], track_ids [M], boxes [M,4])`` of the boxes at least
    ``min_size`` pixels wide and high (tiny boxes make meaningless exemplars)."""
    out = []
    for v in range(dataset.n_videos):
        ann = dataset.annotations(v)
        b = ann["boxes"]
        keep = ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)
        if keep.sum() >= 1:
            out.append((v, ann["frame_index"][keep], ann["track_ids"][keep], b[keep]))
    return out


def sample_pairs(index, n: int, *, max_gap: int, rng: np.random.Generator) -> list[tuple]:
    """``n`` pairs ``(video, t_exemplar, box_exemplar, t_search, box_search)``: a uniformly drawn
    box and a uniformly drawn box of the same track within ``max_gap`` frames (possibly itself
    when its track has no other box in range)."""
    if not index:
        raise ValueError("no annotated boxes to train SiamFC on")
    sizes = np.array([len(fi) for _, fi, _, _ in index], np.float64)
    pairs = []
    for _ in range(n):
        k = int(rng.choice(len(index), p=sizes / sizes.sum()))
        v, fi, ids, boxes = index[k]
        i = int(rng.integers(len(fi)))
        cand = np.flatnonzero((ids == ids[i]) & (np.abs(fi - fi[i]) <= max_gap))
        j = int(rng.choice(cand))
        pairs.append((v, int(fi[i]), boxes[i], int(fi[j]), boxes[j]))
    return pairs


def make_batch(dataset, pairs, *, rng: np.random.Generator, max_shift: float = 32.0, r_pos: float = 16.0,
               response_size: int = 17, device="cpu") -> dict[str, torch.Tensor]:
    """Crops and labels of ``pairs``: ``z [B,3,127,127]``, ``x [B,3,255,255]``, ``labels`` and
    ``weights`` ``[B,1,r,r]`` (balanced)."""
    zs, xs, labels = [], [], []
    ys, xs_grid = np.mgrid[0:response_size, 0:response_size].astype(np.float64)
    centre = (response_size - 1) / 2
    for v, ta, ba, tb, bb in pairs:
        ia = torch.from_numpy(dataset.image(dataset.index_of(v, ta))).to(device).permute(2, 0, 1).float()
        ib = ia if tb == ta else torch.from_numpy(dataset.image(dataset.index_of(v, tb))).to(device).permute(2, 0, 1).float()
        ba_t = torch.as_tensor(ba, dtype=torch.float32, device=device)[None]
        bb_t = torch.as_tensor(bb, dtype=torch.float32, device=device)[None]
        z_side, _ = context_sides(ba_t[:, 2:] - ba_t[:, :2])
        _, x_side = context_sides(bb_t[:, 2:] - bb_t[:, :2])
        shift = rng.uniform(-max_shift, max_shift, size=2)  # crop pixels; target sits at -shift
        c_a = (ba_t[:, :2] + ba_t[:, 2:]) / 2
        c_b = (bb_t[:, :2] + bb_t[:, 2:]) / 2 + torch.as_tensor(shift, dtype=torch.float32,
                                                              device=device) * x_side / INSTANCE_SIZE
        zs.append(crops(ia, c_a, z_side, EXEMPLAR_SIZE))
        xs.append(crops(ib, c_b, x_side, INSTANCE_SIZE))
        tx, ty = centre - shift[0] / TOTAL_STRIDE, centre - shift[1] / TOTAL_STRIDE
        labels.append((np.hypot(xs_grid - tx, ys - ty) <= r_pos / TOTAL_STRIDE).astype(np.float32))
    lab = torch.as_tensor(np.stack(labels)[:, None], device=device)
    pos = lab.sum((1, 2, 3), keepdim=True)
    neg = lab[0].numel() - pos
    weights = torch.where(lab > 0, 0.5 / pos.clamp(min=1), 0.5 / neg.clamp(min=1))
    return {"z": torch.cat(zs), "x": torch.cat(xs), "labels": lab, "weights": weights}


def pair_loss(net: SiamFCNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Balanced logistic loss of the responses (mean over the batch of per-map weighted sums)."""
    resp = net(batch["z"], batch["x"])  # [B,1,r,r]
    if resp.shape[-2:] != batch["labels"].shape[-2:]:
        raise ValueError(f"response {tuple(resp.shape[-2:])} does not match labels {tuple(batch['labels'].shape[-2:])}")
    loss = F.binary_cross_entropy_with_logits(resp, batch["labels"], weight=batch["weights"], reduction="sum")
    return loss / resp.shape[0]


def train_siamfc(dataset, *, net: SiamFCNet | None = None, epochs: int = 10, pairs_per_epoch: int = 512,
                 batch_size: int = 8, lr: float = 1e-2, lr_end: float = 1e-5, max_gap: int = 10,
                 seed: int = 0, device: str = "cpu",
                 on_step: Callable[[int, int, float], None] | None = None) -> tuple[SiamFCNet, list[float]]:
    """Train (or fine-tune ``net``) on pairs of ``dataset``'s tracks.

    Returns:
        (the network in eval mode, mean loss of each epoch). ``on_step(epoch, step, loss)`` is
        called after each optimiser step (progress bars, logs).
    """
    if epochs < 1 or pairs_per_epoch < 1 or batch_size < 1:
        raise ValueError("epochs, pairs_per_epoch and batch_size must be >= 1")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = (net or SiamFCNet()).to(device)
    index = track_index(dataset)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    gamma = (lr_end / lr) ** (1 / max(epochs - 1, 1))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
    history = []
    steps = math.ceil(pairs_per_epoch / batch_size)
    for epoch in range(epochs):
        net.train()
        losses = []
        for step in range(steps):
            n = min(batch_size, pairs_per_epoch - step * batch_size)
            batch = make_batch(dataset, sample_pairs(index, n, max_gap=max_gap, rng=rng), rng=rng, device=device)
            loss = pair_loss(net, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if on_step is not None:
                on_step(epoch, step, losses[-1])
        sched.step()
        history.append(float(np.mean(losses)))
    return net.eval(), history
