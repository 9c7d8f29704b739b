"""SiamFC tracker (Bertinetto et al., ECCV-W 2016, "Fully-Convolutional Siamese Networks for
Object Tracking"), the thesis's second tracker (2.3.2), in PyTorch.

Network (``SiamFCNet``): an AlexNet-style backbone with BatchNorm (stride 8) embeds a 127x127
exemplar crop (-> 256x6x6) and a 255x255 search crop (-> 256x22x22); the head cross-correlates
them into a 17x17 response map, scaled by 0.001 (paper eq. 1 with the batch-norm "adjust" of the
reference implementation folded into a constant).

Checkpoint layout: a plain state dict with the parameter names of the widely used PyTorch port
(huanglianghua/siamfc-pytorch, ``siamfc_alexnet_e50.pth``), reproduced here from its structure:
``backbone.conv1.0.{weight,bias}``, ``backbone.conv1.1.{weight,bias,running_mean,running_var,
num_batches_tracked}`` (BatchNorm, eps 1e-6), ... ``backbone.conv4.*``, ``backbone.conv5.0.{weight,
bias}``; the head has no parameters. conv2, conv4 and conv5 are grouped (2 groups) as in AlexNet.
A ``module.`` prefix (DataParallel) is stripped. Inputs are RGB pixel values in 0..255, not
normalised (as that port). ``tools/train_siamfc.py`` writes the same layout.

Tracking (``SiamFCTracker.propagate``), as the reference tracker: exemplar crop of side
``sqrt((w + p)(h + p))``, ``p = 0.5 (w + h)`` (context 0.5) around the box in the source frame,
resized to 127; search crops 255/127 times larger, at 3 scales ``1.0375^{-1,0,1}``, around the
previous position in each next frame; response upsampled x16 (bicubic, 272x272), side scales
penalised by 0.9745, normalised, blended with a cosine (Hann) window (weight 0.176); the peak's
displacement moves the box, the scale is damped (rate 0.59). Crops are taken for all boxes of a
frame at once with ``torchvision.ops.roi_align`` (bilinear, 2x2 samples per output pixel), the
frame's mean colour filling the outside, as the reference pads with the mean colour.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from vidal.boxes import as_boxes
from vidal.registry import TRACKERS
from vidal.tracking.base import check_target
from vidal.weights import WeightsError, load_strict, read_state_dict, strip_prefix

EXEMPLAR_SIZE, INSTANCE_SIZE, TOTAL_STRIDE = 127, 255, 8


class SiamFCWeightsError(WeightsError):
    """A SiamFC checkpoint is unreadable or of another layout; one-line message naming the file."""


class _BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm with the reference port's eps / momentum."""

    def __init__(self, num_features: int):
        super().__init__(num_features, eps=1e-6, momentum=0.05)


class AlexNetV1(nn.Module):
    """AlexNet-style SiamFC backbone: ``[B,3,H,W]`` -> ``[B,256,(H-87)/8,(W-87)/8]`` (127 -> 6,
    255 -> 22)."""

    output_stride = TOTAL_STRIDE

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 96, 11, 2), _BatchNorm2d(96), nn.ReLU(inplace=True),
                                   nn.MaxPool2d(3, 2))
        self.conv2 = nn.Sequential(nn.Conv2d(96, 256, 5, 1, groups=2), _BatchNorm2d(256), nn.ReLU(inplace=True),
                                   nn.MaxPool2d(3, 2))
        self.conv3 = nn.Sequential(nn.Conv2d(256, 384, 3, 1), _BatchNorm2d(384), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(nn.Conv2d(384, 384, 3, 1, groups=2), _BatchNorm2d(384), nn.ReLU(inplace=True))
        self.conv5 = nn.Sequential(nn.Conv2d(384, 256, 3, 1, groups=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            x = conv(x)
        return x


class SiamFCHead(nn.Module):
    """Cross-correlation of each exemplar embedding with its own search embeddings, x ``out_scale``.

    ``forward(z [N,C,h,w], x [N*S,C,H,W])`` -> ``[N, S, H-h+1, W-w+1]`` (``S`` search crops, e.g.
    scales, per exemplar, ordered exemplar-major)."""

    def __init__(self, out_scale: float = 0.001):
        super().__init__()
        self.out_scale = out_scale

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        n, c = z.shape[:2]
        s = x.shape[0] // n
        x = x.view(n, s, c, x.shape[-2], x.shape[-1]).transpose(0, 1).reshape(s, n * c, x.shape[-2], x.shape[-1])
        out = F.conv2d(x, z, groups=n)  # [S, N, h', w']
        return out.transpose(0, 1) * self.out_scale


class SiamFCNet(nn.Module):
    """``backbone`` + ``head``; ``forward(exemplars [N,3,127,127], searches [N*S,3,255,255])``
    -> responses ``[N, S, 17, 17]`` (logits)."""

    def __init__(self, backbone: nn.Module | None = None, out_scale: float = 0.001):
        super().__init__()
        self.backbone = backbone if backbone is not None else AlexNetV1()
        self.head = SiamFCHead(out_scale)
        if backbone is None:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal convs (fan out), unit BatchNorm: the reference port's initialisation."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(z), self.backbone(x))


def load_siamfc(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> SiamFCNet:
    """A :class:`SiamFCNet` (eval mode) with weights from ``path`` (layout: module docstring).

    Raises:
        SiamFCWeightsError: unreadable file or another layout (names the file and a bad key).
    """
    net = SiamFCNet()
    state = strip_prefix(read_state_dict(path, "SiamFC weights", error=SiamFCWeightsError, keys=("state_dict", "model", "net")))
    load_strict(net, state, path, SiamFCWeightsError, "SiamFC (siamfc-pytorch AlexNetV1 layout)")
    return net.to(device).eval()


def crops(image: torch.Tensor, centres: torch.Tensor, sides: torch.Tensor, size: int) -> torch.Tensor:
    """Square crops ``[K,3,size,size]`` of ``image`` ``[3,H,W]`` (float, 0..255) centred at
    ``centres`` ``[K,2]`` (x, y pixels) with sides ``sides`` ``[K]`` pixels, resized bilinearly;
    the outside of the image reads as the image's mean colour."""
    mean = image.mean((1, 2), keepdim=True)
    half = sides[:, None] / 2
    rois = torch.cat([torch.zeros_like(half), centres - half, centres + half], 1)
    out = roi_align((image - mean)[None], rois.to(image.dtype), output_size=(size, size), spatial_scale=1.0,
                    sampling_ratio=2, aligned=True)
    return out + mean[None]


def context_sides(sizes: torch.Tensor, context: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Exemplar and search crop sides (pixels) for target sizes ``[K,2]`` (w, h)."""
    p = context * sizes.sum(1)
    z = torch.sqrt((sizes[:, 0] + p) * (sizes[:, 1] + p))
    return z, z * INSTANCE_SIZE / EXEMPLAR_SIZE


@dataclass
class SiamFCConfig:
    """Tracking hyper-parameters (reference values of the paper's code / siamfc-pytorch)."""

    context: float = 0.5
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_lr: float = 0.59
    scale_penalty: float = 0.9745
    window_influence: float = 0.176
    response_up: int = 16


@dataclass
class _State:
    """Tracking state of the boxes of one (video, frame, direction) after ``len(steps)`` steps."""

    z: torch.Tensor          # [N,C,6,6] exemplar embeddings
    centres: torch.Tensor    # [N,2]
    sizes: torch.Tensor      # [N,2]
    x_sides: torch.Tensor    # [N]
    steps: list              # boxes [N,4] float32 after step 1, 2, ...


@TRACKERS.register("siamfc")
class SiamFCTracker:
    """Box propagation by SiamFC, re-tracked every call (thesis: the costly alternative to flow).

    ``propagate(video, frame, boxes, delta)`` tracks all boxes of the call together frame by frame
    from ``frame`` to ``frame + delta`` with the exemplars of ``frame``. Results are cached per
    (video, frame, direction, boxes) with the tracking state, so asking for ``delta = 1, 2, 3``
    runs three steps in all; :meth:`reset` clears the cache (call it when detections change,
    i.e. every AL cycle).

    Args:
        dataset: the ``VideoDataset`` whose frames are tracked.
        net: a :class:`SiamFCNet` (weights loaded).
        device: torch device.
        config: :class:`SiamFCConfig`.
        max_states: tracking states kept for continuation (LRU); results are kept until reset.
    """

    name = "siamfc"

    def __init__(self, dataset, net: nn.Module, *, device: str | torch.device = "cpu",
                 config: SiamFCConfig | None = None, max_states: int = 256, max_frames: int = 16):
        self.dataset = dataset
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.cfg = config or SiamFCConfig()
        self.max_states, self.max_frames = max_states, max_frames
        c = self.cfg
        self.scale_factors = torch.tensor(
            [c.scale_step ** e for e in np.linspace(-(c.scale_num // 2), c.scale_num // 2, c.scale_num)],
            dtype=torch.float32, device=self.device)
        self._results: dict[tuple, np.ndarray] = {}
        self._states: OrderedDict[tuple, _State] = OrderedDict()
        self._frames: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()
        self._window: torch.Tensor | None = None

    @classmethod
    def for_dataset(cls, dataset, *, weights: str | os.PathLike | None = None, device: str = "cpu",
                    allow_random: bool = False, **options) -> "SiamFCTracker":
        """SiamFC tracker for ``dataset`` with weights from ``weights`` (a state dict, see the
        module docstring). ``weights=None`` is an error unless ``allow_random=True`` (tests)."""
        if weights is None:
            if not allow_random:
                raise SiamFCWeightsError("the siamfc tracker needs weights=PATH (train them with "
                                         "tools/train_siamfc.py, or see docs/flow.md)")
            net = SiamFCNet()
        else:
            net = load_siamfc(weights)
        return cls(dataset, net, device=device, **options)

    def reset(self) -> None:
        """Forget every cached result and state (detections change between AL cycles)."""
        self._results.clear()
        self._states.clear()
        self._frames.clear()

    # ------------------------------------------------------------------ helpers

    def _image(self, video: int, t: int) -> torch.Tensor:
        key = (video, t)
        img = self._frames.get(key)
        if img is None:
            arr = self.dataset.image(self.dataset.index_of(video, t))
            img = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device).permute(2, 0, 1).float()
            self._frames[key] = img
            while len(self._frames) > self.max_frames:
                self._frames.popitem(last=False)
        else:
            self._frames.move_to_end(key)
        return img

    def _hann(self) -> torch.Tensor:
        if self._window is None:
            n = self._response_size * self.cfg.response_up
            h = torch.hann_window(n + 2, periodic=False, dtype=torch.float32, device=self.device)[1:-1]
            w = torch.outer(h, h)
            self._window = w / w.sum()
        return self._window

    @torch.no_grad()
    def _start(self, video: int, frame: int, boxes: np.ndarray) -> _State:
        b = torch.as_tensor(boxes, dtype=torch.float32, device=self.device)
        centres = (b[:, :2] + b[:, 2:]) / 2
        sizes = (b[:, 2:] - b[:, :2]).clamp(min=1.0)
        z_sides, x_sides = context_sides(sizes, self.cfg.context)
        z = self.net.backbone(crops(self._image(video, frame), centres, z_sides, EXEMPLAR_SIZE))
        return _State(z, centres, sizes, x_sides, [])

    @torch.no_grad()
    def _step(self, state: _State, image: torch.Tensor) -> None:
        """Track one frame further (reference ``SiamFCTracker.update``), in place."""
        c, n, s = self.cfg, state.centres.shape[0], self.scale_factors.numel()
        sides = (state.x_sides[:, None] * self.scale_factors[None]).reshape(-1)
        x = crops(image, state.centres.repeat_interleave(s, 0), sides, INSTANCE_SIZE)
        resp = self.net.head(state.z, self.net.backbone(x))  # [N,S,r,r]
        r = resp.shape[-1]
        self._response_size = r
        up = r * c.response_up
        resp = F.interpolate(resp, size=(up, up), mode="bicubic", align_corners=False)
        penalty = torch.full((s,), c.scale_penalty, device=self.device)
        penalty[s // 2] = 1.0
        resp = resp * penalty[None, :, None, None]
        best = resp.flatten(2).amax(2).argmax(1)  # [N]
        resp = resp[torch.arange(n, device=self.device), best]  # [N,up,up]
        resp = resp - resp.flatten(1).amin(1)[:, None, None]
        resp = resp / (resp.flatten(1).sum(1)[:, None, None] + 1e-16)
        resp = (1 - c.window_influence) * resp + c.window_influence * self._hann()
        loc = resp.flatten(1).argmax(1)
        peak = torch.stack([loc % up, loc // up], 1).float()  # (x, y) in the upsampled map
        disp = (peak - (up - 1) / 2) * TOTAL_STRIDE / c.response_up  # pixels of the 255 crop
        scale = self.scale_factors[best]
        state.centres = state.centres + disp * (state.x_sides * scale)[:, None] / INSTANCE_SIZE
        damp = (1 - c.scale_lr) + c.scale_lr * scale
        state.sizes = state.sizes * damp[:, None]
        state.x_sides = state.x_sides * damp
        half = state.sizes / 2
        state.steps.append(torch.cat([state.centres - half, state.centres + half], 1).cpu().numpy())

    # ------------------------------------------------------------------ protocol

    def propagate(self, video: int, frame: int, boxes: np.ndarray, delta: int) -> np.ndarray:
        """Boxes ``[N,4]`` of ``frame`` tracked to ``frame + delta`` (float32 ``[N,4]``, clipped,
        NaN rows for NaN inputs or boxes that leave the image)."""
        info = self.dataset.videos[video]
        check_target(info.n_frames, video, frame, delta)
        b = as_boxes(boxes)
        out = np.full(b.shape, np.nan, np.float32)
        valid = np.isfinite(b).all(1)
        if not valid.any():
            return out
        sign = 1 if delta > 0 else -1
        key = (video, frame, sign, b[valid].tobytes())
        result = self._results.get(key + (delta,))
        if result is None:
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = self._start(video, frame, b[valid])
            self._states.move_to_end(key)
            while len(state.steps) < abs(delta):
                self._step(state, self._image(video, frame + sign * (len(state.steps) + 1)))
                k = len(state.steps)
                self._results[key + (sign * k,)] = state.steps[-1]
            while len(self._states) > self.max_states:
                self._states.popitem(last=False)
            result = state.steps[abs(delta) - 1]
        cur = result.astype(np.float64).copy()
        cur[:, 0::2] = np.clip(cur[:, 0::2], 0, info.width)
        cur[:, 1::2] = np.clip(cur[:, 1::2], 0, info.height)
        cur[(cur[:, 2] <= cur[:, 0]) | (cur[:, 3] <= cur[:, 1])] = np.nan
        out[valid] = cur.astype(np.float32)
        return out
