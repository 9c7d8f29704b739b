"""PWC-Net (Sun et al., CVPR 2018, "PWC-Net: CNNs for Optical Flow Using Pyramid, Warping, and
Cost Volume") in plain PyTorch — no CUDA extension: the cost volume is computed with shifted
products (81 channels for a maximum displacement of 4 px at each pyramid level).

Written for vidal from the paper. The module and parameter names follow the widely used PyTorch
port (sniklaus/pytorch-pwc, ``network-default.pytorch``; keys ``netExtractor.netOne.0.weight`` ...
``netSix.netSix.0.bias``, ``netRefiner.netMain.12.weight``; the original file names them
``module...`` instead of ``net...`` and :func:`load_pwcnet` accepts both), so those weights load
unchanged. Those weights are licensed for non-commercial research only (see ``docs/flow.md``):
vidal never ships or downloads them; the user gives a path.

Architecture (paper section 3; channel counts of the public model):

- feature pyramid ``netExtractor``: six levels (stride 2, 4, ..., 64), 16/32/64/96/128/196
  channels, three 3x3 convs each, LeakyReLU(0.1);
- at level l = 6..2, decoder ``net{Six,Fiv,Fou,Thr,Two}``: upsample the flow and features of
  level l+1 (transposed convs ``netUpflow``, ``netUpfeat``), warp the second image's features by
  the upsampled flow (scaled to level-l pixels by 20 / 2**l), correlate with the first image's
  features (cost volume, LeakyReLU), and estimate the flow with a DenseNet-style stack of convs
  (128, 128, 96, 64, 32 channels, each output concatenated to its input) and a final 3x3 conv;
- context network ``netRefiner``: dilated convs (1, 2, 4, 8, 16, 1, 1) on the last features, added
  to the level-2 flow.

The network predicts flow / 20 at 1/4 resolution; :func:`pwcnet_flow` resizes inputs to multiples
of 64, multiplies by 20, upsamples bilinearly and rescales to the input size. Inputs of the public
weights are **BGR** in ``[0, 1]``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from vidal.weights import WeightsError, load_strict, read_state_dict

MAX_DISPLACEMENT = 4
LEVEL_CHANNELS = {1: 16, 2: 32, 3: 64, 4: 96, 5: 128, 6: 196}
COST = (2 * MAX_DISPLACEMENT + 1) ** 2  # 81
DENSE = (128, 128, 96, 64, 32)


class PWCNetWeightsError(WeightsError):
    """A PWC-Net checkpoint is unreadable or does not fit the architecture; one-line message."""


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(negative_slope=0.1, inplace=False)


def correlation(f1: torch.Tensor, f2: torch.Tensor, max_displacement: int = MAX_DISPLACEMENT) -> torch.Tensor:
    """Cost volume ``[B, (2d+1)**2, H, W]``: channel ``(dy + d) * (2d + 1) + (dx + d)`` holds
    ``mean_c f1[:, c, y, x] * f2[:, c, y + dy, x + dx]`` (zero outside ``f2``), as the FlowNet
    correlation layer with kernel 1, stride 1 that PWC-Net uses."""
    d = max_displacement
    _, _, h, w = f1.shape
    f2p = F.pad(f2, (d, d, d, d))
    out = []
    for dy in range(2 * d + 1):
        for dx in range(2 * d + 1):
            out.append((f1 * f2p[:, :, dy:dy + h, dx:dx + w]).mean(1))
    return torch.stack(out, 1)


def backwarp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` at ``p + flow(p)`` (bilinear); pixels whose sample falls (partly) outside
    ``x`` are zeroed, as in the public implementation."""
    b, _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                            torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], -1)
    xo = torch.cat([x, x.new_ones(b, 1, x.shape[2], x.shape[3])], 1)
    out = F.grid_sample(xo, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    mask = (out[:, -1:] > 0.999).to(x.dtype)
    return out[:, :-1] * mask


class Extractor(nn.Module):
    """Feature pyramid: ``[B,3,H,W]`` -> six maps at strides 2..64."""

    def __init__(self):
        super().__init__()
        names = ("netOne", "netTwo", "netThr", "netFou", "netFiv", "netSix")
        c_in = 3
        for level, name in enumerate(names, start=1):
            c = LEVEL_CHANNELS[level]
            setattr(self, name, nn.Sequential(
                nn.Conv2d(c_in, c, 3, 2, 1), _lrelu(),
                nn.Conv2d(c, c, 3, 1, 1), _lrelu(),
                nn.Conv2d(c, c, 3, 1, 1), _lrelu()))
            c_in = c
        self._names = names

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for name in self._names:
            x = getattr(self, name)(x)
            feats.append(x)
        return feats


def _decoder_in(level: int) -> int:
    """Input channels of the dense estimator at ``level`` (cost volume [+ features, flow, upfeat])."""
    return COST if level == 6 else COST + LEVEL_CHANNELS[level] + 2 + 2


class Decoder(nn.Module):
    """Optical-flow estimator of one pyramid level (paper Fig. 3, with dense connections)."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level
        c = _decoder_in(level)
        if level < 6:
            previous = _decoder_in(level + 1) + sum(DENSE)
            self.netUpflow = nn.ConvTranspose2d(2, 2, 4, 2, 1)
            self.netUpfeat = nn.ConvTranspose2d(previous, 2, 4, 2, 1)
            self.backwarp_scale = 20.0 / 2 ** level  # flow / 20 (full-res px) -> level-l pixels
        names = ("netOne", "netTwo", "netThr", "netFou", "netFiv")
        for name, out in zip(names, DENSE):
            setattr(self, name, nn.Sequential(nn.Conv2d(c, out, 3, 1, 1), _lrelu()))
            c += out
        self.netSix = nn.Sequential(nn.Conv2d(c, 2, 3, 1, 1))
        self._names = names

    def forward(self, f1: torch.Tensor, f2: torch.Tensor, previous: dict | None) -> dict:
        if previous is None:
            feat = F.leaky_relu(correlation(f1, f2), 0.1)
        else:
            flow = self.netUpflow(previous["flow"])
            upfeat = self.netUpfeat(previous["feat"])
            volume = F.leaky_relu(correlation(f1, backwarp(f2, flow * self.backwarp_scale)), 0.1)
            feat = torch.cat([volume, f1, flow, upfeat], 1)
        for name in self._names:
            feat = torch.cat([getattr(self, name)(feat), feat], 1)
        return {"flow": self.netSix(feat), "feat": feat}


class Refiner(nn.Module):
    """Context network: dilated convs on the level-2 decoder features, a flow residual."""

    def __init__(self):
        super().__init__()
        c = _decoder_in(2) + sum(DENSE)
        spec = [(c, 128, 1), (128, 128, 2), (128, 128, 4), (128, 96, 8), (96, 64, 16), (64, 32, 1)]
        layers: list[nn.Module] = []
        for c_in, c_out, dil in spec:
            layers += [nn.Conv2d(c_in, c_out, 3, 1, dil, dilation=dil), _lrelu()]
        layers.append(nn.Conv2d(32, 2, 3, 1, 1))
        self.netMain = nn.Sequential(*layers)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.netMain(feat)


class PWCNet(nn.Module):
    """``forward(im1, im2)``: BGR ``[B,3,H,W]`` in [0,1], H and W multiples of 64 -> flow / 20
    ``[B,2,H/4,W/4]`` (use :func:`pwcnet_flow` for pixel flow at any size)."""

    def __init__(self):
        super().__init__()
        self.netExtractor = Extractor()
        self.netTwo = Decoder(2)
        self.netThr = Decoder(3)
        self.netFou = Decoder(4)
        self.netFiv = Decoder(5)
        self.netSix = Decoder(6)
        self.netRefiner = Refiner()

    def forward(self, im1: torch.Tensor, im2: torch.Tensor) -> torch.Tensor:
        p1, p2 = self.netExtractor(im1), self.netExtractor(im2)
        est = self.netSix(p1[-1], p2[-1], None)
        est = self.netFiv(p1[-2], p2[-2], est)
        est = self.netFou(p1[-3], p2[-3], est)
        est = self.netThr(p1[-4], p2[-4], est)
        est = self.netTwo(p1[-5], p2[-5], est)
        return est["flow"] + self.netRefiner(est["feat"])


@torch.no_grad()
def pwcnet_flow(model: PWCNet, im1: torch.Tensor, im2: torch.Tensor) -> torch.Tensor:
    """Flow ``[B,2,H,W]`` pixels from RGB uint8-range float images ``[B,3,H,W]`` (0..255).

    Converts to BGR in [0,1], resizes to multiples of 64 (bilinear), runs the network, and
    resizes/rescales the flow back (as the reference ``estimate``)."""
    b, _, h, w = im1.shape
    hp, wp = max(64, -(-h // 64) * 64), max(64, -(-w // 64) * 64)

    def prep(x):
        x = x.flip(1) / 255.0
        return F.interpolate(x, size=(hp, wp), mode="bilinear", align_corners=False)

    flow = model(prep(im1), prep(im2)) * 20.0
    flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    scale = torch.tensor([w / wp, h / hp], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
    return flow * scale


def load_pwcnet(path: str | os.PathLike | None, *, device: str | torch.device = "cpu") -> PWCNet:
    """A :class:`PWCNet` in eval mode with weights from ``path`` (a state dict as saved by
    ``torch.save(model.state_dict())``, possibly wrapped in ``{"state_dict": ...}``; keys
    ``net...`` or the original ``module...``). ``path=None`` keeps random weights (tests, speed).

    Raises:
        PWCNetWeightsError: unreadable file, or keys / shapes that do not fit (message names the
            file and the first offending key).
    """
    model = PWCNet()
    if path is not None:
        state = read_state_dict(path, "PWC-Net weights", error=PWCNetWeightsError, keys=("state_dict", "model", "net"))
        state = {k.replace("module", "net"): v for k, v in state.items()}
        load_strict(model, state, path, PWCNetWeightsError, "PWC-Net (sniklaus/pytorch-pwc layout)")
    return model.to(device).eval()
