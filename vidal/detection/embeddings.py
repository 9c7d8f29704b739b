"""Features of a trained detector for diversity selectors (issue 17, the need ``embeddings``).

:func:`embed` gives, for a batch of images and the boxes of their detections:

- a **frame embedding**, float32 ``[B, D]``: every FPN level's feature map average-pooled over
  the image's own area (padding of the batch excluded), the levels concatenated
  (``D = levels x channels``; torchvision R50-FPN: 5 x 256 = 1280, the CPU EfficientNet-Lite0
  FPN profile: its ``len(fpn_strides) + 1`` levels x ``fpn_channels``);
- **RoI features**, a list of float32 ``[n_i, R]``, one row per given box: the model's own RoI
  pooling of the FPN maps at the box (in the network's input scale) followed by its box head, the
  representation the classifier reads (torchvision: ``box_roi_pool`` + ``box_head``, ``R`` the
  head's width: 1024 for R50-FPN, ``box_head_dim`` for the CPU profiles; mmdet: the RoI head's
  ``bbox_roi_extractor`` + the shared fully-connected layers of ``bbox_head``, 1024 for the
  model-zoo R50).

The image goes through the same resize and normalisation as in ``predict`` (one backbone pass;
no RPN, no NMS), so the features are those the detections came from. Every detector that can
embed has an ``embed(images, boxes)`` method: the torch backends through
``TorchDetector.embed`` (batches of ``predict_batch_size``) and their ``embed_batch``, which calls
:func:`embed_torchvision_batch` / :func:`embed_mmdet_batch` here; the test double its own. Nothing
here changes the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BACKENDS = ("torchvision_frcnn", "mmdet")


def embed(detector, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray]
          ) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(frame embeddings float32 [B, D], [RoI features float32 [n_i, R]])`` of ``images``
    (uint8 ``[H, W, 3]`` RGB) and ``boxes`` (float ``[n_i, 4]`` x1 y1 x2 y2 in the image's pixels,
    e.g. the frame's detections), through the detector's ``embed`` (both torch backends:
    :meth:`vidal.detection.torch_detector.TorchDetector.embed`, in prediction batches)."""
    if len(images) != len(boxes):
        raise ValueError(f"embed: {len(images)} images and {len(boxes)} box arrays")
    own = getattr(detector, "embed", None)
    if not callable(own):
        raise ValueError(f"embeddings: detector backend {getattr(detector, 'backend', None)!r} has no embed(images, "
                         f"boxes) method (valid: {', '.join(BACKENDS)}); choose an acquisition without the "
                         f"embeddings need")
    return own(images, boxes)


def _pool_levels(levels, valid_hw: list[tuple[int, int]], padded_hw: tuple[int, int]):
    """Concatenated per-level average pools ``[B, sum C_l]`` over each image's valid area."""
    import torch

    out = []
    H, W = padded_hw
    for f in levels:
        h, w = f.shape[-2:]
        rows = []
        for b, (vh, vw) in enumerate(valid_hw):
            ch, cw = max(1, int(np.ceil(vh * h / H))), max(1, int(np.ceil(vw * w / W)))
            rows.append(f[b, :, :ch, :cw].mean(dim=(1, 2)))
        out.append(torch.stack(rows))
    return torch.cat(out, dim=1)


def _split(feats, counts: list[int]) -> list[np.ndarray]:
    arr = feats.detach().float().cpu().numpy().astype(np.float32) if feats is not None else np.zeros((0, 0), np.float32)
    out, s = [], 0
    for n in counts:
        out.append(arr[s:s + n].reshape(n, -1) if n else np.zeros((0, arr.shape[1] if arr.ndim == 2 else 0),
                                                                   np.float32))
        s += n
    return out


def embed_torchvision_batch(detector, images, boxes) -> tuple[np.ndarray, list[np.ndarray]]:
    """One batch of :func:`embed` for the torchvision backend (eval mode, under ``no_grad``)."""
    import torch

    from vidal.detection.torchvision_frcnn import _to_tensor

    model, device = detector.model, detector.device
    tensors = [_to_tensor(im).to(device) for im in images]
    image_list, _ = model.transform(tensors)
    feats = model.backbone(image_list.tensors)
    sizes = [tuple(int(v) for v in hw) for hw in image_list.image_sizes]
    frames = _pool_levels(list(feats.values()), sizes, tuple(image_list.tensors.shape[-2:]))
    scaled = []
    for im, b, (h, w) in zip(images, boxes, sizes):
        oh, ow = np.asarray(im).shape[:2]
        f = np.array([w / ow, h / oh, w / ow, h / oh], np.float32)
        scaled.append(torch.as_tensor(np.asarray(b, np.float32).reshape(-1, 4) * f, device=device))
    counts = [len(b) for b in scaled]
    if sum(counts):
        x = model.roi_heads.box_roi_pool(feats, scaled, image_list.image_sizes)
        rois = _split(model.roi_heads.box_head(x), counts)
    else:
        rois = [np.zeros((0, _box_head_width(model)), np.float32) for _ in counts]
    return frames.float().cpu().numpy().astype(np.float32), rois


def _box_head_width(model) -> int:
    last = [m for m in model.roi_heads.box_head.modules() if hasattr(m, "out_features")]
    return int(last[-1].out_features) if last else 0


def embed_mmdet_batch(detector, images, boxes) -> tuple[np.ndarray, list[np.ndarray]]:
    """One batch of :func:`embed` for the mmdet backend (eval mode, under ``no_grad``)."""
    import torch
    from mmdet.structures.bbox import bbox2roi

    model = detector.model
    head = model.roi_head
    data = detector._batch(images, training=False)
    inputs, samples = data["inputs"], data["data_samples"]
    feats = model.extract_feat(inputs)
    sizes = [tuple(int(v) for v in smp.metainfo["img_shape"]) for smp in samples]
    frames = _pool_levels(list(feats), sizes, tuple(inputs.shape[-2:]))
    scaled = []
    for b, smp in zip(boxes, samples):
        sx, sy = smp.metainfo["scale_factor"]
        f = np.array([sx, sy, sx, sy], np.float32)
        scaled.append(torch.as_tensor(np.asarray(b, np.float32).reshape(-1, 4) * f, device=inputs.device))
    counts = [len(b) for b in scaled]
    extractor = head.bbox_roi_extractor
    if sum(counts):
        x = extractor(feats[:extractor.num_inputs], bbox2roi(scaled))
        rois = _split(_mmdet_shared_fcs(head.bbox_head, x), counts)
    else:
        rois = [np.zeros((0, _mmdet_head_width(head)), np.float32) for _ in counts]
    return frames.float().cpu().numpy().astype(np.float32), rois


def _mmdet_shared_fcs(bbox_head, x):
    """The shared part of mmdet's ``ConvFCBBoxHead`` (``Shared2FCBBoxHead``: two fc + ReLU) on
    RoI features ``[n, C, r, r]``: ``[n, fc_out_channels]``."""
    for conv in getattr(bbox_head, "shared_convs", []):
        x = conv(x)
    fcs = getattr(bbox_head, "shared_fcs", [])
    if len(fcs):
        if getattr(bbox_head, "with_avg_pool", False):
            x = bbox_head.avg_pool(x)
        x = x.flatten(1)
        for fc in fcs:
            x = bbox_head.relu(fc(x))
    else:
        x = x.flatten(1)
    return x


def _mmdet_head_width(head) -> int:
    fcs = getattr(head.bbox_head, "shared_fcs", [])
    if len(fcs):
        return int(fcs[-1].out_features)
    ex = head.bbox_roi_extractor
    size = ex.roi_layers[0].output_size
    return int(ex.out_channels) * int(np.prod(size if isinstance(size, (tuple, list)) else (size, size)))


# ----------------------------------------------------------------------------- the per-cycle cache

EMBEDDINGS_FORMAT = "vidal-pool-embeddings-v1"


def embeddings_to_arrays(frame: np.ndarray, rois: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Plain arrays for ``np.savez`` (no pickle): ``frame`` float32 ``[N, D]``, ``roi_offsets``
    int64 ``[N + 1]`` and ``roi`` float16 ``[sum n_i, R]`` (frame ``i``'s rows are
    ``roi[roi_offsets[i]:roi_offsets[i + 1]]``; float16 halves the file, RoI features are the
    large part)."""
    frame = np.asarray(frame, np.float32)
    if frame.ndim != 2 or len(frame) != len(rois):
        raise ValueError(f"embeddings: frame array {frame.shape} for {len(rois)} RoI arrays")
    widths = {r.shape[1] for r in rois if len(r)}
    if len(widths) > 1:
        raise ValueError(f"embeddings: RoI features of different widths {sorted(widths)}")
    width = widths.pop() if widths else 0
    offsets = np.zeros(len(rois) + 1, np.int64)
    offsets[1:] = np.cumsum([len(r) for r in rois])
    roi = np.concatenate([np.asarray(r, np.float32).reshape(-1, width) for r in rois]) if rois else \
        np.zeros((0, width), np.float32)
    return {"format": np.str_(EMBEDDINGS_FORMAT), "frame": frame, "roi_offsets": offsets,
            "roi": roi.astype(np.float16)}


def embeddings_from_arrays(z) -> tuple[np.ndarray, list[np.ndarray]]:
    """Inverse of :func:`embeddings_to_arrays` (RoI features back as float32)."""
    if "format" not in z or str(z["format"]) != EMBEDDINGS_FORMAT:
        raise ValueError(f"not {EMBEDDINGS_FORMAT}")
    frame, off, roi = np.asarray(z["frame"], np.float32), np.asarray(z["roi_offsets"], np.int64), np.asarray(z["roi"])
    if frame.ndim != 2 or len(off) != len(frame) + 1 or off[0] != 0 or off[-1] != len(roi) or np.any(np.diff(off) < 0):
        raise ValueError(f"inconsistent embeddings: frame {frame.shape}, roi_offsets {off.shape}, roi {roi.shape}")
    return frame, [roi[s:e].astype(np.float32) for s, e in zip(off[:-1].tolist(), off[1:].tolist())]
