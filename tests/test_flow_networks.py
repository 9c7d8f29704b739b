"""Flow networks (vidal/tracking/pwcnet.py, flow_methods.py): PWC-Net building blocks against
naive references, forward shapes at sizes that are not multiples of 64, the sniklaus/pytorch-pwc
key layout, checkpoint round trips for PWC-Net and torchvision RAFT, and one-line errors for wrong
files (also through tools/compute_flow.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vidal.tracking.flow_methods import FlowWeightsError, RAFTFlow, build_flow_method
from vidal.tracking.pwcnet import PWCNet, PWCNetWeightsError, backwarp, correlation, load_pwcnet, pwcnet_flow

REPO = Path(__file__).resolve().parents[1]


def test_correlation_matches_a_naive_loop():
    torch.manual_seed(0)
    f1, f2 = torch.randn(1, 3, 5, 6), torch.randn(1, 3, 5, 6)
    out = correlation(f1, f2, max_displacement=2)
    assert out.shape == (1, 25, 5, 6)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            ch = (dy + 2) * 5 + (dx + 2)
            for y, x in ((0, 0), (2, 3), (4, 5)):
                yy, xx = y + dy, x + dx
                want = (f1[0, :, y, x] * f2[0, :, yy, xx]).mean() if 0 <= yy < 5 and 0 <= xx < 6 else 0.0
                assert float(out[0, ch, y, x]) == pytest.approx(float(want), abs=1e-6)


def test_backwarp_by_an_integer_flow_is_a_shift_with_zeroed_outside():
    x = torch.arange(2 * 4 * 5, dtype=torch.float32).view(1, 2, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0] = 1.0  # sample one pixel to the right
    out = backwarp(x, flow)
    torch.testing.assert_close(out[..., :4], x[..., 1:])
    assert torch.all(out[..., 4] == 0)


def test_pwcnet_layout_shapes_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = PWCNet().eval()
    keys = set(model.state_dict())
    for k in ("netExtractor.netOne.0.weight", "netExtractor.netSix.4.bias", "netSix.netOne.0.weight",
              "netFiv.netUpflow.weight", "netFiv.netUpfeat.weight", "netTwo.netSix.0.bias",
              "netRefiner.netMain.12.weight"):
        assert k in keys, k
    assert "netSix.netUpflow.weight" not in keys  # the coarsest level has nothing to upsample
    assert sum(p.numel() for p in model.parameters()) == 9374274  # the public PWC-Net's size
    im1, im2 = torch.rand(1, 3, 30, 45) * 255, torch.rand(1, 3, 30, 45) * 255  # -> 64x64 inside
    flow = pwcnet_flow(model, im1, im2)
    assert flow.shape == (1, 2, 30, 45) and torch.isfinite(flow).all()
    path = tmp_path / "pwc.pytorch"
    torch.save({k.replace("net", "module", 1): v for k, v in model.state_dict().items()}, path)  # original names
    method = build_flow_method("pwcnet", weights=path)
    for k, v in method.model.state_dict().items():
        torch.testing.assert_close(v, model.state_dict()[k])
    a = (np.random.default_rng(0).random((1, 30, 45, 3)) * 255).astype(np.uint8)
    assert method(a, a).shape == (1, 30, 45, 2)


def test_pwcnet_wrong_files(tmp_path):
    state = PWCNet().state_dict()
    torch.save({k: v for k, v in state.items() if "netRefiner" not in k}, tmp_path / "partial.pytorch")
    torch.save(dict(state, **{"netTwo.netUpflow.weight": torch.zeros(2, 2, 3, 3)}), tmp_path / "shape.pytorch")
    (tmp_path / "junk.pytorch").write_text("hello")
    for name, match in (("partial.pytorch", "netRefiner"), ("shape.pytorch", "netTwo.netUpflow.weight"),
                        ("junk.pytorch", "cannot be read")):
        with pytest.raises(PWCNetWeightsError, match=match) as err:
            load_pwcnet(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FlowWeightsError, match="partial.pytorch"):
        build_flow_method("pwcnet", weights=tmp_path / "partial.pytorch")
    with pytest.raises(FlowWeightsError, match="--weights"):
        build_flow_method("pwcnet")


def test_raft_small_round_trip_and_wrong_layout(tmp_path):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    path = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), path)
    method = RAFTFlow(path, iterations=2)
    a = (np.random.default_rng(1).random((1, 36, 44, 3)) * 255).astype(np.uint8)  # not multiples of 8
    flow = method(a, a)
    assert flow.shape == (1, 36, 44, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    saved = torch.load(path)
    for k, v in method.model.state_dict().items():  # the file's weights are the model's
        torch.testing.assert_close(v, saved[k])
    torch.save(PWCNet().state_dict(), tmp_path / "pwc_as_raft.pth")
    with pytest.raises(FlowWeightsError, match="pwc_as_raft.pth.*raft_small"):
        RAFTFlow(tmp_path / "pwc_as_raft.pth")
    with pytest.raises(FlowWeightsError, match="raft_large"):
        RAFTFlow(path, size="large")  # small weights in the large model


def test_compute_flow_cli_wrong_weights_is_one_line(tmp_path):
    spec = importlib.util.spec_from_file_location("_tool_compute_flow", REPO / "tools" / "compute_flow.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    (tmp_path / "bad.pth").write_bytes(b"\x00" * 10)
    r = CliRunner().invoke(tool.main, [str(tmp_path / "missing.h5"), "--method", "raft", "--weights",
                                       str(tmp_path / "bad.pth"), "--out", str(tmp_path / "o.h5")])
    assert r.exit_code == 1 and r.output.startswith("Error:") and "bad.pth" in r.output
    assert r.output.count("\n") == 1
