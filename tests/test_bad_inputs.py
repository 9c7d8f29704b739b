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
                   f"dataset = dict(train={str(data)!r}, test={str(data)!r})\n"
                   f"acquisition = dict(name='random')\nal = dict(initial=2, budget=1, cycles=1)\n")
    return cfg


#: tool -> arguments, given the tmp folder, the broken file and a config naming it
TOOLS = {
    "train": lambda tmp, data, cfg: [str(cfg), "--work-dir", str(tmp / "wd"), "--quiet"],
    "evaluate": lambda tmp, data, cfg: [str(cfg), str(tmp / "none.pth"), "--quiet"],
    "eval_tracker": lambda tmp, data, cfg: [str(data), "--tracker", "identity"],
    "train_siamfc": lambda tmp, data, cfg: [str(data), "--out", str(tmp / "w.pth"), "--quiet"],
    "make_datacard": lambda tmp, data, cfg: [str(data), "--out", str(tmp / "card"), "--name", "x"],
    "export_coco_vid": lambda tmp, data, cfg: [str(data), "--out", str(tmp / "coco"), "--quiet"],
    "run_al": lambda tmp, data, cfg: [str(cfg), "--work-dir", str(tmp / "al"), "--quiet"],
    "compute_flow": lambda tmp, data, cfg: [str(data), "--quiet"],
    "estimate_errors": lambda tmp, data, cfg: [str(cfg), str(tmp / "none.pth"), "--out", str(tmp / "est"),
                                               "--quiet"],
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


# ----------------------------------------------------------------------------- options, metrics files
def _run_folder(tmp: Path, name: str, metrics: str) -> Path:
    """A tools/run_al.py work dir whose metrics.jsonl holds ``metrics``."""
    run = tmp / name
    run.mkdir()
    (run / "config.py").write_text("acquisition = {'name': 'random'}\n")
    (run / "experiment.json").write_text('{"seed": 0}')
    (run / "metrics.jsonl").write_text(metrics)
    return run


_GOOD_ROW = '{"cycle": 0, "labeled": 4, "labeled_fraction": 0.5, "mAP": 0.1, "AP": {}}\n'

#: name -> (tool, arguments given the tmp folder (with ok.h5, noflow.h5 and exp.py), text of the error line)
OPTIONS = {
    "generate_seed_20_digits": ("generate", lambda t: ["--preset", "synthia-al", "--scale", "0.002", "--seed",
                                                       "1" * 20, "--out", str(t / "g")], "--seed: 1111"),
    "run_al_negative_seed": ("run_al", lambda t: [str(t / "exp.py"), "--work-dir", str(t / "al"), "--seed", "-1"],
                             "--seed: -1 is out of range"),
    "train_siamfc_seed_text": ("train_siamfc", lambda t: [str(t / "ok.h5"), "--out", str(t / "w.pth"), "--seed", "x"],
                               "--seed: expected an integer"),
    "make_datacard_seed_huge": ("make_datacard", lambda t: [str(t / "ok.h5"), "--out", str(t / "c"), "--seed",
                                                            str(2**40)], "out of range"),
    "evaluate_device_gpu": ("evaluate", lambda t: [str(t / "exp.py"), str(t / "m.pth"), "--device", "gpu"],
                            "--device: 'gpu' is not a device"),
    "evaluate_max_frames_0": ("evaluate", lambda t: [str(t / "exp.py"), str(t / "m.pth"), "--max-frames", "0"],
                              "--max-frames: 0 is out of range: use 1 or more"),
    "estimate_errors_batch_0": ("estimate_errors", lambda t: [str(t / "exp.py"), str(t / "m.pth"), "--batch-size",
                                                              "0"], "--batch-size: 0 is out of range"),
    "train_siamfc_batch_0": ("train_siamfc", lambda t: [str(t / "ok.h5"), "--out", str(t / "w.pth"), "--batch-size",
                                                        "0"], "--batch-size: 0 is out of range"),
    "eval_tracker_device_tpu": ("eval_tracker", lambda t: [str(t / "ok.h5"), "--device", "tpu"],
                                "--device: 'tpu' is not a device"),
    "compute_flow_device_cuda_x": ("compute_flow", lambda t: [str(t / "ok.h5"), "--device", "cuda:x"],
                                   "--device: 'cuda:x' is not a device"),
    "compute_flow_gt_without_flow": ("compute_flow", lambda t: [str(t / "ok.h5"), "--method", "gt", "--quiet"],
                                     "has no ground-truth 'flow'"),
    "plot_curves_corrupt_metrics": ("plot_curves", lambda t: [str(_run_folder(t, "r", _GOOD_ROW + "{not json\n")),
                                                              "--out", str(t / "c.png")],
                                    "metrics.jsonl: line 2 is not JSON"),
    "make_table_metrics_wrong_field": ("make_table", lambda t: [str(_run_folder(t, "r", _GOOD_ROW.replace(
        '"mAP": 0.1', '"mAP": "high"'))), "--out", str(t / "t.md")], "line 1: field 'mAP' is 'high'"),
    "make_table_metrics_missing_field": ("make_table", lambda t: [str(_run_folder(t, "r", '{"cycle": 0}\n')),
                                                                  "--out", str(t / "t.md")],
                                         "line 1: field 'labeled' is missing"),
    "plot_training_corrupt_metrics": ("plot_training", lambda t: [str(_run_folder(t, "tr", '{"mAP50_all_scores": 0.1, '
                                                                                  '"train_minutes": "x"}\n')),
                                                                  "--out", str(t / "p.png")],
                                      "train_minutes must be numbers"),
    "grid_report_not_a_grid": ("grid_report", lambda t: [str(_run_folder(t, "g", _GOOD_ROW)), "--out", str(t / "o")],
                               "no grid.json"),
    "run_grid_seed_huge": ("run_grid", lambda t: [str(REPO / "configs" / "al" / "cpu"), "--seeds", "0,99999999999",
                                                  "--work-dir", str(t / "grid")], "--seeds: 99999999999 is out"),
    "demo_unknown_method": ("demo", lambda t: ["--methods", "random-r,bogus", "--out", str(t / "demo")],
                            "unknown method 'bogus'"),
    "demo_bad_seeds": ("demo", lambda t: ["--seeds", "0,x", "--out", str(t / "demo")], "--seeds must be"),
    "import_coco_vid_missing_json": ("import_coco_vid", lambda t: [str(t / "none.json"), "--images", str(t),
                                                                   "--out", str(t / "o.h5")], "none.json"),
    "import_imagenet_vid_missing_root": ("import_imagenet_vid", lambda t: [str(t / "ILSVRC"), "--split", "val",
                                                                           "--out", str(t / "o.h5")], "ILSVRC"),
}


@pytest.mark.parametrize("case", sorted(OPTIONS))
def test_tools_refuse_bad_options_and_corrupt_files(tmp_path, case):
    tool, args, expected = OPTIONS[case]
    write_split(tmp_path / "ok.h5", [3, 2], seed=0, split="test")
    write_split(tmp_path / "noflow.h5", [3], seed=1, split="test")
    _config(tmp_path, tmp_path / "ok.h5")
    argv = args(tmp_path)  # may create the broken input; it is part of "before"
    before = _files(tmp_path)
    result = CliRunner().invoke(_tool(tool), argv)
    output = result.output.strip()
    assert result.exit_code not in (0, None) and "Traceback" not in output, output
    lines = output.splitlines()
    if lines[0].startswith("Usage: "):  # click's own argument errors (a missing file): usage, then one error line
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], output
    assert _files(tmp_path) == before          # nothing new, nothing changed


def test_evaluate_refuses_cuda_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(_tool("evaluate"), ["x.py", "m.pth", "--device", "cuda"])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "Error: --device: cuda: this machine has no CUDA device (torch.cuda.is_available() is False); "
        "use --device cpu"]


def test_validate_dataset_names_every_broken_file(tmp_path):
    data = tmp_path / "bad.h5"
    write_split(data, [3, 2], seed=0, split="test")
    BROKEN["label_99"][0](data)
    result = CliRunner().invoke(_tool("validate_dataset"), [str(data)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert str(data) in result.output and "label outside" in result.output


# ----------------------------------------------------------------------------- work files, locks, leftovers
def test_a_truncated_work_file_is_one_line_naming_it(tmp_path):
    from vidal.workdir import ExperimentError, WorkDir

    wd = WorkDir(tmp_path)
    wd.cycle_dir(0)
    for name in ("selection.npz", "eval.json"):
        (tmp_path / "cycle_000" / name).write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "state_cycle_000.npz").write_bytes(b"")
    for read, name in ((lambda: wd.read_selection(0), "cycle_000/selection.npz"),
                       (lambda: wd.read(0, "eval.json"), "cycle_000/eval.json"),
                       (lambda: wd.load_state(0, 5), "state_cycle_000.npz")):
        with pytest.raises(ExperimentError) as e:
            read()
        msg = str(e.value)
        assert msg.startswith(f"{tmp_path / name}: unreadable") and "rerun with --resume" in msg and "\n" not in msg


def _lock_holder(folder: Path):
    """A separate process holding ``folder``'s FolderLock until killed; returns it once the lock is held."""
    import subprocess
    import sys
    import time

    code = ("import sys, time; from vidal.locking import FolderLock; "
            f"FolderLock({str(folder)!r}, 'AL run (tools/run_al.py)').acquire(); print('held', flush=True); "
            "time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 60
    assert proc.stdout.readline().strip() == "held" and time.time() < deadline
    return proc


def test_a_second_process_on_an_al_work_dir_refuses_and_a_dead_holders_lock_is_taken_over(tmp_path):
    from vidal.locking import FolderLock, FolderLockedError

    root = tmp_path / "data"
    root.mkdir()
    write_split(root / "train.h5", [4, 4], seed=0, split="train")
    write_split(root / "test.h5", [3], seed=1, split="test")
    cfg = _config(tmp_path, root / "train.h5")
    work = tmp_path / "al"
    work.mkdir()
    holder = _lock_holder(work)
    try:
        before = _files(tmp_path)
        result = CliRunner().invoke(_tool("run_al"), [str(cfg), "--work-dir", str(work), "--quiet"])
        assert result.exit_code == 1 and result.output.strip().splitlines() == [
            f"Error: {work} is in use by another AL run (tools/run_al.py) (PID {holder.pid}); wait for it to "
            f"finish or stop it, then run again"], result.output
        assert _files(tmp_path) == before
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with FolderLock(work, "x"):  # the kernel released the dead holder's lock: taken over
        with pytest.raises(FolderLockedError):
            FolderLock(work, "x").acquire()


def test_stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    from vidal.data.writer import remove_stale_temporaries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = os.getpid()
    names = [f".shards-{dead.pid}", f".train.h5.tmp-{dead.pid}", f".test.h5.pending-{dead.pid}",
             f".train.h5.shards-{dead.pid}-abc", f".x.frames-tmp-{dead.pid}"]
    for n in names:
        (tmp_path / n).mkdir() if "shards" in n or "frames" in n else (tmp_path / n).write_bytes(b"x")
    (tmp_path / f".shards-{dead.pid}" / "000.h5").write_bytes(b"x")
    keep = [f".train.h5.tmp-{live}", "train.h5", ".hidden", "notes.tmp-1"]
    for n in keep:
        (tmp_path / n).write_bytes(b"x")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(names)
    assert sorted(os.listdir(tmp_path)) == sorted(keep)


def test_generate_killed_while_rendering_then_rerun_leaves_only_the_outputs(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "gen"
    cmd = [sys.executable, str(REPO / "tools" / "generate.py"), "--preset", "synthia-al", "--scale", "0.004",
           "--resolution", "64x48", "--workers", "1", "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(out.glob(".shards-*/*")):
            time.sleep(0.05)
        assert list(out.glob(".shards-*/*")), "generate.py wrote no shard within 120 s"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(out.glob(".shards-*")) and not (out / "train.h5").exists()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["data_card.md", "data_card_montage.png", "test.h5", "train.h5"]


def test_generate_killed_while_merging_then_rerun_leaves_only_the_outputs(tmp_path):
    """A real SIGKILL in the merge step: the process kills itself right after the first split's
    merge returns (the second split not merged yet, nothing renamed into place)."""
    import subprocess
    import sys

    out = tmp_path / "gen"
    args = ["--preset", "synthia-al", "--scale", "0.004", "--resolution", "64x48", "--workers", "1", "--out",
            str(out), "--quiet"]
    killer = ("import os, signal, sys, runpy\n"
              "import synth.generate as g\n"
              "real = g.merge_shards\n"
              "def merge(*a, **k):\n"
              "    path = real(*a, **k)\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              "g.merge_shards = merge\n"
              f"sys.argv = ['generate.py'] + {args!r}\n"
              f"runpy.run_path({str(REPO / 'tools' / 'generate.py')!r}, run_name='__main__')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", killer], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == -9, res.stderr[-2000:]
    left = sorted(os.listdir(out))
    assert any(".pending-" in n for n in left) and any(n.startswith(".shards-") for n in left), left
    assert "train.h5" not in left and "test.h5" not in left
    res = subprocess.run([sys.executable, str(REPO / "tools" / "generate.py"), *args], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["data_card.md", "data_card_montage.png", "test.h5", "train.h5"]


@pytest.mark.parametrize("case", ["file", "foreign_folder", "two_args"])
def test_setup_mmdet_env_refuses_a_bad_venv_dir_before_building(tmp_path, case):
    import subprocess

    target = tmp_path / "venv"
    if case == "file":
        target.write_text("not a venv")
    elif case == "foreign_folder":
        target.mkdir()
        (target / "thesis.tex").write_text("x")
    args = [str(target)] + (["extra"] if case == "two_args" else [])
    before = _files(tmp_path)
    res = subprocess.run(["bash", str(REPO / "tools" / "setup_mmdet_env.sh"), *args], capture_output=True, text=True,
                         timeout=60)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("setup_mmdet_env: "), res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert _files(tmp_path) == before


def test_test_mmdet_refuses_a_bad_environment_folder_before_building(tmp_path):
    """tools/test_mmdet.sh (what .ci/run calls) passes VIDAL_MMDET_VENV to the setup script: a file
    there stops it in one line, nothing built."""
    import subprocess

    target = tmp_path / "venv"
    target.write_text("not a venv")
    before = _files(tmp_path)
    res = subprocess.run(["bash", str(REPO / "tools" / "test_mmdet.sh")], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "VIDAL_MMDET_VENV": str(target)})
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and lines == [f"setup_mmdet_env: {target} exists and is not a folder; choose another "
                                             f"VENV_DIR"], res.stderr
    assert _files(tmp_path) == before
