"""End-to-end generation (synth/generate.py, tools/generate.py): valid split files, data card,
same output whatever the number of workers, no overwrite, clean CLI errors leaving nothing
behind, and the plan's area / condition allotment found in the written files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest

from synth.generate import GenerateError, generate_dataset
from synth.scenario import ScenarioError, load_scenario, plan_sequences
from vidal.data.validate import validate_file

REPO = Path(__file__).resolve().parents[1]
SCALE, RES, SEED = 0.001, "160x120", 1
ARRAYS = ("frames", "boxes", "labels", "track_ids", "frame_index", "visible_fraction", "truncation",
          "occlusion")


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "out"
    summary = generate_dataset(preset="synthia-al", out=out, scale=SCALE, resolution=RES, seed=SEED,
                               workers=2, progress=False)
    return out, summary


def _leftovers(out: Path) -> list[str]:
    """Split files, shard folders or temporary files left in ``out``."""
    if not out.exists():
        return []
    return sorted(p.name for p in out.iterdir()
                  if p.name in ("train.h5", "test.h5") or p.name.startswith((".shards-", ".train.h5", ".test.h5")))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generate_writes_valid_splits_and_data_card(dataset):
    out, summary = dataset
    assert sorted(p.name for p in out.iterdir()) == ["data_card.md", "data_card_montage.png", "test.h5", "train.h5"]
    for split in ("train", "test"):
        path = out / f"{split}.h5"
        assert validate_file(path) == [], split
        assert validate_file(path, deep=True) == [], split
        with h5py.File(path, "r") as f:
            assert _text(f.attrs["split"]) == split
            assert int(f.attrs["seed"]) == SEED
            config = json.loads(_text(f.attrs["generator_config"]))
            assert config["scale"] == SCALE and config["resolution"] == [160, 120] and config["seed"] == SEED
            assert [_text(c) for c in f.attrs["classes"]] == ["pedestrian", "cyclist", "car", "wheelchair"]
            for name, v in f["videos"].items():
                assert v["frames"].shape == (v.attrs["n_frames"], 120, 160, 3)
                assert _text(v.attrs["subset"]) == name.rsplit("_", 1)[0]
    card = (out / "data_card.md").read_text()
    assert "data_card_montage.png" in card
    png = (out / "data_card_montage.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    # the summary adds up with the plan
    specs = plan_sequences(load_scenario("synthia-al"), scale=SCALE, seed=SEED)
    assert summary["sequences"] == len(specs)
    assert summary["frames"] == sum(s.n_frames for s in specs)


def _arrays(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return {name: {k: v[k][()] for k in ARRAYS} | {"attrs": {k: _text(a) for k, a in v.attrs.items()}}
                for name, v in f["videos"].items()}


def test_same_seed_same_data_whatever_the_workers(dataset, tmp_path):
    out, _ = dataset
    other = tmp_path / "one-worker"
    generate_dataset(preset="synthia-al", out=other, scale=SCALE, resolution=RES, seed=SEED, workers=1,
                     progress=False, datacard=False)
    n_boxes = 0
    for split in ("train", "test"):
        a, b = _arrays(out / f"{split}.h5"), _arrays(other / f"{split}.h5")
        assert list(a) == list(b)
        for name in a:
            assert a[name]["attrs"] == b[name]["attrs"], name
            for k in ARRAYS:
                assert a[name][k].dtype == b[name][k].dtype and np.array_equal(a[name][k], b[name][k]), (name, k)
            n_boxes += len(a[name]["boxes"])
    assert n_boxes > 0


def test_no_overwrite_leaves_files_untouched(dataset):
    out, _ = dataset
    before = {p.name: (_digest(p), p.stat().st_mtime_ns) for p in out.iterdir()}
    with pytest.raises(GenerateError, match="already exists"):
        generate_dataset(preset="synthia-al", out=out, scale=SCALE, resolution=RES, seed=SEED + 1,
                         workers=1, progress=False)
    after = {p.name: (_digest(p), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert after == before


def test_overwrite_replaces_files(tmp_path):
    out = tmp_path / "ow"
    kw = dict(preset="synthia-al", out=out, scale=0.0005, resolution="64x48", workers=1, progress=False,
              datacard=False)
    generate_dataset(seed=1, **kw)
    first = _arrays(out / "train.h5")
    generate_dataset(seed=2, overwrite=True, **kw)
    second = _arrays(out / "train.h5")
    assert [v["attrs"]["seed"] for v in first.values()] != [v["attrs"]["seed"] for v in second.values()]
    assert _leftovers(out) == ["test.h5", "train.h5"]
    assert validate_file(out / "train.h5") == []


def test_api_errors(tmp_path):
    out = tmp_path / "api"
    with pytest.raises(ScenarioError, match="unknown preset"):
        generate_dataset(preset="no-such-preset", out=out, scale=SCALE, progress=False)
    for scale in (0, -1):
        with pytest.raises(GenerateError, match="scale"):
            generate_dataset(preset="synthia-al", out=out, scale=scale, progress=False)
    with pytest.raises(GenerateError, match="resolution"):
        generate_dataset(preset="synthia-al", out=out, scale=SCALE, resolution="big", progress=False)
    with pytest.raises(GenerateError, match="workers"):
        generate_dataset(preset="synthia-al", out=out, scale=SCALE, workers=0, progress=False)
    assert not out.exists()


# -- the command line -------------------------------------------------------------------------------


def _cli(*args):
    return subprocess.run([sys.executable, "tools/generate.py", "--quiet", "--resolution", "64x48",
                           "--workers", "1", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    a_file = root / "a-file"
    a_file.write_text("not a folder")
    bad_toml = root / "bad.toml"
    bad_toml.write_text('name = "bad"\nclasses = ["car"]\n[[subsets]]\nname = "a"\nsplit = "train"\n'
                        'sequences = 1\nareas = { city = 1 }\nconditions = { spring = 1 }\n'
                        'spawn = { car = 1.5 }\n')
    read_only = root / "read-only"
    read_only.mkdir()
    read_only.chmod(0o500)
    return {
        "unknown preset": (["--preset", "no-such-preset", "--scale", "0.001"], root / "o1", "no-such-preset"),
        "scale 0": (["--scale", "0"], root / "o2", "--scale"),
        "scale -1": (["--scale", "-1"], root / "o3", "--scale"),
        "unwritable out": (["--scale", "0.0005"], a_file / "sub", "not writable"),
        "malformed scenario": (["--preset", str(bad_toml), "--scale", "0.001"], root / "o4", "spawn.car"),
        "read-only out": (["--scale", "0.0005"], read_only, "not writable"),
    }


@pytest.mark.parametrize("case", ["unknown preset", "scale 0", "scale -1", "unwritable out", "malformed scenario",
                                  "read-only out"])
def test_cli_errors_are_one_line_and_leave_nothing(bad_inputs, case):
    if case == "read-only out" and os.access(bad_inputs[case][1], os.W_OK):
        pytest.skip("running as root: a chmod 500 folder is writable")
    args, out, words = bad_inputs[case]
    res = _cli(*args, "--out", str(out))
    assert res.returncode != 0
    lines = [l for l in (res.stdout + res.stderr).splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert words in lines[0]
    assert _leftovers(out) == []
    if out.parent.is_dir():
        assert not out.exists() or list(out.iterdir()) == []


def test_cli_generates(tmp_path):
    out = tmp_path / "cli-ok"
    res = _cli("--scale", "0.0005", "--seed", "3", "--no-datacard", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout
    assert _leftovers(out) == ["test.h5", "train.h5"]
    with h5py.File(out / "train.h5", "r") as f:
        assert "tools/generate.py" in _text(f.attrs["command"]) and "--scale 0.0005" in _text(f.attrs["command"])
    # an existing output is refused on the command line too, in one line
    again = _cli("--scale", "0.0005", "--seed", "3", "--no-datacard", "--out", str(out))
    assert again.returncode != 0 and again.stderr.strip().startswith("Error: ") and "--overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


# -- the plan's proportions in the written files ------------------------------------------------------


def test_written_condition_and_area_counts_equal_the_plan(tmp_path):
    scale, seed = 0.004, 5
    out = tmp_path / "props"
    generate_dataset(preset="synthia-al", out=out, scale=scale, resolution="48x36", seed=seed, workers=2,
                     progress=False, datacard=False)
    specs = plan_sequences(load_scenario("synthia-al"), scale=scale, seed=seed)
    want = {"sequences": Counter(), "frames": Counter()}
    for s in specs:
        for key in (("area", s.area), ("condition", s.condition)):
            want["sequences"][(s.subset,) + key] += 1
            want["frames"][(s.subset,) + key] += s.n_frames
    got = {"sequences": Counter(), "frames": Counter()}
    for split in ("train", "test"):
        with h5py.File(out / f"{split}.h5", "r") as f:
            for v in f["videos"].values():
                sub = _text(v.attrs["subset"])
                for key in ("area", "condition"):
                    got["sequences"][(sub, key, _text(v.attrs[key]))] += 1
                    got["frames"][(sub, key, _text(v.attrs[key]))] += int(v.attrs["n_frames"])
                    assert len(v["frames"]) == v.attrs["n_frames"]
    assert got == want
    # per subset, the fraction of frames of each condition / area is the plan's, exactly
    for (sub, key, value), frames in want["frames"].items():
        total = sum(n for (s, k, _), n in want["frames"].items() if s == sub and k == key)
        got_total = sum(n for (s, k, _), n in got["frames"].items() if s == sub and k == key)
        assert got["frames"][(sub, key, value)] / got_total == frames / total


# -- failures leave nothing behind ------------------------------------------------------------------


def test_render_failure_leaves_no_split_and_no_shards(tmp_path, monkeypatch):
    import synth.generate as gen

    calls = []
    real = gen.generate_sequence

    def flaky(spec, classes, opts, shard_dir):
        calls.append(spec.name)
        if len(calls) == 3:
            raise RuntimeError("renderer crashed")
        return real(spec, classes, opts, shard_dir)

    monkeypatch.setattr(gen, "generate_sequence", flaky)
    out = tmp_path / "crash"
    with pytest.raises(RuntimeError, match="renderer crashed"):
        generate_dataset(preset="synthia-al", out=out, scale=0.0005, resolution="48x36", workers=1,
                         progress=False, datacard=False)
    assert len(calls) == 3
    assert _leftovers(out) == []


def test_merge_failure_of_second_split_removes_the_first(tmp_path, monkeypatch):
    import synth.generate as gen

    real = gen.merge_shards

    def merge(out_path, shards, attrs, **kw):
        if Path(out_path).name.startswith(".test.h5.pending-"):  # the splits merge under hidden names
            raise OSError("disk full")
        return real(out_path, shards, attrs, **kw)

    monkeypatch.setattr(gen, "merge_shards", merge)
    out = tmp_path / "merge"
    with pytest.raises(OSError, match="disk full"):
        generate_dataset(preset="synthia-al", out=out, scale=0.0005, resolution="48x36", workers=1,
                         progress=False, datacard=False)
    assert _leftovers(out) == []
