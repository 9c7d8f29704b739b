"""Tools that read a dataset refuse a broken one before they write anything (issue 15): one line
naming the file (and the video and field where there is one), no traceback, no new file.

A table of tools x broken inputs; a new tool that reads datasets joins ``TOOLS``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from tiny_videos import write_split

REPO = Path(__file__).resolve().parents[1]
_TOOLS: dict[str, object] = {}


def _tool(name: str):
    if name not in _TOOLS:
        spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOLS[name] = module.main
    return _TOOLS[name]


def _edit(path: Path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


def _set_row(key: str, row: int, value):
    def fn(f):
        ds = f[f"videos/vid_000/{key}"]
        a = ds[()]
        a[row] = value
        ds[...] = a
    return fn


def _zero_videos(f):
    for name in list(f["videos"]):
        del f[f"videos/{name}"]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


#: name -> (how to break a valid file, what the error line must contain besides the file name)
BROKEN = {
    "nan_box": (lambda p: _edit(p, _set_row("boxes", 0, [np.nan, 1, 5, 5])), "videos/vid_000/boxes: row 0 has a non-finite"),
    "label_99": (lambda p: _edit(p, _set_row("labels", 0, 99)), "videos/vid_000/labels: row 0 has a label outside 1..2"),
    "x2_lt_x1": (lambda p: _edit(p, _set_row("boxes", 0, [30, 1, 10, 5])), "videos/vid_000/boxes: row 0 has x2 <= x1"),
    "negative_x1": (lambda p: _edit(p, _set_row("boxes", 0, [-5, 1, 10, 5])), "videos/vid_000/boxes: row 0 has x1 < 0"),
    "zero_videos": (lambda p: _edit(p, _zero_videos), "videos: is empty"),
    "empty_file": (lambda p: p.write_bytes(b""), "not an HDF5 file"),
    "truncated": (_truncate, "cannot be opened as HDF5"),
}


def _config(tmp: Path, data: Path) -> Path:
    cfg = tmp / "exp.py"
    cfg.write_text(f"_base_ = ['{REPO}/configs/_base_/detectors/frcnn-effl0-fpn_cpu.py', "
                   f"'{REPO}/configs/_base_/schedules/cpu-mini.py']\n"
                   f"dataset = dict(train={str(data)!r}, test={str(data)!r})\n")
    return cfg


#: tool -> arguments, given the tmp folder, the broken file and a config naming it
TOOLS = {
    "train": lambda tmp, data, cfg: [str(cfg), "--work-dir", str(tmp / "wd"), "--quiet"],
    "evaluate": lambda tmp, data, cfg: [str(cfg), str(tmp / "none.pth"), "--quiet"],
    "eval_tracker": lambda tmp, data, cfg: [str(data), "--tracker", "identity"],
    "train_siamfc": lambda tmp, data, cfg: [str(data), "--out", str(tmp / "w.pth"), "--quiet"],
    "make_datacard": lambda tmp, data, cfg: [str(data), "--out", str(tmp / "card"), "--name", "x"],
    "export_coco_vid": lambda tmp, data, cfg: [str(data), "--out", str(tmp / "coco"), "--quiet"],
}


def _files(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.mark.parametrize("broken", sorted(BROKEN))
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tools_refuse_broken_datasets(tmp_path, tool, broken):
    data = tmp_path / "bad.h5"
    write_split(data, [3, 2], seed=0, split="test")
    breaker, expected = BROKEN[broken]
    breaker(data)
    cfg = _config(tmp_path, data)
    before = _files(tmp_path)
    result = CliRunner().invoke(_tool(tool), TOOLS[tool](tmp_path, data, cfg))
    output = result.output.strip()
    assert result.exit_code not in (0, None) and result.exception is None or isinstance(result.exception, SystemExit), \
        output
    assert result.exit_code != 0 and "Traceback" not in output, output
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(f"Error: {data}: ") and expected in lines[0], lines[0]
    assert _files(tmp_path) == before          # nothing new, nothing changed


def test_datacard_refuses_existing_outputs_and_bad_names(tmp_path):
    data = tmp_path / "ok.h5"
    write_split(data, [3], seed=0, split="test")
    card = tmp_path / "card"
    card.mkdir()
    (card / "x.md").write_text("old")
    before = _files(tmp_path)
    for args, expected in ((["--name", "x"], f"{card / 'x.md'} exists; pass --overwrite"),
                           (["--name", "../x"], "--name: '../x' contains '/'"),
                           (["--name", ".."], "--name: '..' is a relative path")):
        result = CliRunner().invoke(_tool("make_datacard"), [str(data), "--out", str(card), *args])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and expected in lines[0], result.output
    assert _files(tmp_path) == before
    result = CliRunner().invoke(_tool("make_datacard"), [str(data), "--out", str(card), "--name", "x", "--overwrite",
                                                         "--redundancy-pairs", "2", "--montage-tiles", "1"])
    assert result.exit_code == 0, result.output
    assert (card / "x.md").read_text() != "old" and "class_" not in (card / "x.md").read_text()
    assert sorted(os.listdir(card)) == ["x.md", "x_montage.png"]


def test_train_keeps_an_existing_work_dir_on_bad_config_and_evaluate_keeps_outputs(tmp_path):
    data = tmp_path / "ok.h5"
    write_split(data, [3], seed=0, split="test")
    cfg = _config(tmp_path, data)
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "config.py").write_text("old run")
    (wd / "provenance.json").write_text("{}")
    (tmp_path / "m.json").write_text("old")
    before = _files(tmp_path)
    for option, expected in (("schedule.lr='fast'", "detector: lr must be a finite number, got 'fast'"),
                             ("schedule.milestones='12'", "detector: milestones must be a list of integers"),
                             ("schedule.epochs=True", "detector: epochs must be an integer, got True")):
        result = CliRunner().invoke(_tool("train"), [str(cfg), "--work-dir", str(wd), "--quiet", "--cfg-options",
                                                     option])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"Error: {cfg}: ") \
            and expected in lines[0], result.output
    result = CliRunner().invoke(_tool("evaluate"), [str(cfg), str(tmp_path / "none.pth"), "--out",
                                                    str(tmp_path / "m.json")])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        f"Error: {tmp_path / 'm.json'} exists; pass --overwrite to replace it, or choose another --out"]
    assert _files(tmp_path) == before
