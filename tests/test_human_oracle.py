"""The human oracle in the AL loop (issue 16): a run with al.oracle="human" stops with the
annotation job and the next steps; resumed before the labels arrive it says what is missing and
loses nothing; labels come back through CVAT XML and COCO json files (boxes preserved), importing
twice changes nothing, bad labels are one line naming the task, skipped frames stay pending, and the
next cycle trains on exactly the imported boxes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import vidal.acquisition  # noqa: F401 - registers the acquisitions
from human_helpers import annotator_boxes, make_pool, recording_backend, trained_boxes
from vidal.config import ConfigError, load_config
from vidal.data import VideoDataset
from vidal.human import LabelError, import_labels, job_path
from vidal.loop import Experiment, ExperimentError

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _run(config: Path, work: Path, resume: bool, **options):
    with recording_backend():
        cfg = load_config(config, [f"{k}={v!r}" for k, v in options.items()])
        return Experiment(cfg, work, 0, resume=resume, progress=False, threads=1, echo=lambda s: None,
                          command=f"python tools/run_al.py {config} --work-dir {work} --seed 0").run()


def _job(work: Path, n: int) -> dict:
    return json.loads(job_path(work, n).read_text())


def _snapshot(work: Path) -> dict[str, bytes]:
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*"))
            if p.is_file() and p.name not in ("log.txt", ".lock")}


def _coco_file(path: Path, pool, job: dict, frames=None, shift=0.37) -> dict[int, np.ndarray]:
    """A COCO json as an annotation tool would export it: the annotator's boxes of ``frames``."""
    images, anns, want = [], [], {}
    for k, e in enumerate(job["frames"]):
        if frames is not None and e["index"] not in frames:
            continue
        images.append({"id": k + 1, "file_name": f"images/{e['video']}/{e['frame']:06d}.png", "width": e["width"],
                       "height": e["height"]})
        b, lab = annotator_boxes(pool, e["index"], shift)
        want[e["index"]] = np.concatenate([b, lab[:, None]], 1)
        for box, c in zip(b, lab):
            anns.append({"id": len(anns) + 1, "image_id": k + 1, "category_id": int(c), "iscrowd": 0,
                         "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "bright"}, {"id": 2, "name": "dark"}]}))
    return want


def _assert_trained_on(model_pt: Path, want: dict[int, np.ndarray]) -> None:
    seen = trained_boxes(model_pt)
    assert set(want) <= set(seen)
    for i, w in want.items():
        np.testing.assert_allclose(seen[i], w, atol=1e-4)


def test_human_loop_cold_start_import_resume_cvat_coco(tmp_path):
    config = make_pool(tmp_path)
    pool = VideoDataset(tmp_path / "train.h5")
    work = tmp_path / "run"
    # 1. cold start: job 0 by Random+R, the run stops and says what to do
    res = _run(config, work, False)
    assert "waiting for labels: job 0" in res["waiting"] and "tools/import_labels.py" in res["waiting"]
    assert f"python tools/run_al.py {config} --work-dir {work} --seed 0 --resume" in res["waiting"]
    job0 = _job(work, 0)
    assert len(job0["frames"]) == 4 and job0["made_by"].startswith("cold start: Random+R")
    assert not (work / "state_cycle_000.npz").exists() and not (work / "cycle_000" / "train.json").exists()
    # 2. resumed before the labels arrive: the same message, nothing lost or changed
    before = _snapshot(work)
    res = _run(config, work, True)
    assert "job 0" in res["waiting"] and "4 of its 4 frames still to label" in res["waiting"]
    assert _snapshot(work) == before
    # 3. the labels of job 0 as a COCO json; twice = once
    want0 = _coco_file(tmp_path / "job0.json", pool, job0)
    s = import_labels(work, tmp_path / "job0.json", "coco")
    assert (s["new"], s["labeled"], s["pending"]) == (4, 4, 0)
    labels = (work / "labels.json").read_bytes()
    s = import_labels(work, tmp_path / "job0.json", "coco")
    assert (s["new"], s["changed"]) == (0, 0) and (work / "labels.json").read_bytes() == labels
    # 4. resume: cycle 0 trains on exactly those boxes, selects 3 frames, writes job 1 with the detections
    res = _run(config, work, True)
    assert "waiting for labels: job 1" in res["waiting"]
    _assert_trained_on(work / "cycle_000" / "model.pt", want0)
    assert set(trained_boxes(work / "cycle_000" / "model.pt")) == set(want0)
    job1 = _job(work, 1)
    sel = np.load(work / "cycle_000" / "selection.npz")
    assert [e["index"] for e in job1["frames"]] == sel["selected"].tolist() and len(job1["frames"]) == 3
    assert not set(sel["selected"].tolist()) & set(want0)
    assert all(e["prediction"] is not None for e in job1["frames"])
    assert np.isnan(sel["real_fp"]).all()  # no ground truth to count real errors against
    # 5. job 1 through CVAT XML: export, the annotator replaces the pre-annotations, one frame skipped
    out = tmp_path / "cvat1"
    r = CliRunner().invoke(_tool("export_selection"), [str(work), "--format", "cvat", "--out", str(out), "--quiet",
                                                        "--min-score", "0.6"])
    assert r.exit_code == 0, r.output
    xml = ET.parse(out / "annotations.xml")
    images = xml.getroot().findall("image")
    assert len(images) == 3 and all((out / "images" / im.get("name")).is_file() for im in images)
    # pre-annotations: the detections scored >= --min-score, coordinates exact
    scores = [s for e in job1["frames"] for s in e["prediction"]["scores"]]
    assert min(scores) < 0.6 <= max(scores)  # the filter has something to drop and to keep
    for im, e in zip(images, job1["frames"]):
        p = e["prediction"]
        kept = [k for k, s in enumerate(p["scores"]) if s >= 0.6]
        pre = im.findall("box")
        assert len(pre) == len(kept) and all(b.get("source") == "auto" for b in pre)
        for b, k in zip(pre, kept):
            assert [float(b.get(a)) for a in ("xtl", "ytl", "xbr", "ybr")] == p["boxes"][k]
    want1 = {}
    skipped = job1["frames"][2]
    for im, e in zip(images, job1["frames"]):
        for b in im.findall("box"):
            im.remove(b)
        b, lab = annotator_boxes(pool, e["index"])
        for box, c in zip(b, lab):
            ET.SubElement(im, "box", label=["bright", "dark"][c - 1], xtl=repr(float(box[0])), ytl=repr(float(box[1])),
                          xbr=repr(float(box[2])), ybr=repr(float(box[3])), occluded="0", source="manual")
        want1[e["index"]] = np.concatenate([b, lab[:, None]], 1)
    xml.getroot().remove(images[2])  # the annotators skipped the third frame
    xml.write(tmp_path / "cvat1.xml")
    del want1[skipped["index"]]
    r = CliRunner().invoke(_tool("import_labels"), [str(work), str(tmp_path / "cvat1.xml"), "--format", "cvat"])
    assert r.exit_code == 0 and "2 of 3 labeled, 1 pending" in r.output, r.output
    labels_before = json.loads((work / "labels.json").read_text())["frames"]
    for i, w in want1.items():  # the boxes of the file, exactly
        np.testing.assert_array_equal(np.asarray(labels_before[str(i)]["boxes"]), w[:, :4])
    # resumed with a pending frame: waits, naming it
    before = _snapshot(work)
    res = _run(config, work, True)
    assert "job 1" in res["waiting"] and "1 of its 3 frames still to label" in res["waiting"]
    assert _snapshot(work) == before
    # give it up: it returns to the pool, cycle 1 trains on the 4 + 2 labeled frames
    r = CliRunner().invoke(_tool("import_labels"), [str(work), "--drop-pending"])
    assert r.exit_code == 0 and "0 pending, 1 dropped" in r.output, r.output
    res = _run(config, work, True)
    assert "waiting for labels: job 2" in res["waiting"]
    seen = trained_boxes(work / "cycle_001" / "model.pt")
    assert set(seen) == set(want0) | set(want1)
    _assert_trained_on(work / "cycle_001" / "model.pt", {**want0, **want1})
    state1 = np.load(work / "state_cycle_001.npz")["cycle_of"]
    assert state1[skipped["index"]] < 0 and (state1 == 1).sum() == 2
    # the closed job 1 refuses later imports
    with pytest.raises(LabelError, match="job 1 is closed"):
        import_labels(work, tmp_path / "cvat1.xml", "cvat", number=1)
    rows = [json.loads(x) for x in (work / "metrics.jsonl").read_text().splitlines()]
    assert [r["labeled"] for r in rows] == [4]  # cycle 1's row comes once its selection is labeled
    assert json.loads((work / "cycle_001" / "eval.json").read_text())["num_frames"] == 6
    pool.close()


def test_coco_round_trip_and_bad_labels_are_one_line(tmp_path):
    config = make_pool(tmp_path)
    pool = VideoDataset(tmp_path / "train.h5")
    work = tmp_path / "run"
    _run(config, work, False)
    job0 = _job(work, 0)
    out = tmp_path / "coco0"
    r = CliRunner().invoke(_tool("export_selection"), [str(work), "--format", "coco", "--out", str(out),
                                                        "--context", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    coco = json.loads((out / "annotations.json").read_text())
    assert [im["vidal_index"] for im in coco["images"]] == [e["index"] for e in job0["frames"]]
    assert coco["annotations"] == []  # a cold start by Random+R has no model, no pre-annotations
    for im in coco["images"]:  # the exported image is the stored frame, pixel for pixel
        import cv2

        png = cv2.imread(str(out / "images" / im["file_name"]))[:, :, ::-1]
        np.testing.assert_array_equal(png, pool.image(im["vidal_index"]))
    assert len(list((out / "context").rglob("*.png"))) >= 4
    # the annotators fill the exported file
    want = {}
    for im in coco["images"]:
        b, lab = annotator_boxes(pool, im["vidal_index"], shift=0.123)
        want[im["vidal_index"]] = b
        coco["annotations"] += [{"id": len(coco["annotations"]) + 1, "image_id": im["id"], "category_id": int(c),
                                 "bbox": [x[0], x[1], x[2] - x[0], x[3] - x[1]], "iscrowd": 0}
                                for x, c in zip(b, lab)]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(coco))
    # bad files first: one line naming the file and the task, labels.json never written
    bad = json.loads(good.read_text())
    bad["categories"][1]["name"] = "truck"
    cases = {"unknown class": (bad, "class 'truck' is not one of the run's classes bright, dark")}
    bad = json.loads(good.read_text())
    bad["images"][0]["vidal_frame"] = 99
    cases["not in job"] = (bad, "frame 99 of video .* is not in annotation job 0")
    bad = json.loads(good.read_text())
    bad["annotations"][0]["bbox"] = [80.0, 10.0, 30.0, 10.0]
    cases["outside"] = (bad, "box x1=80.00 y1=10.00 x2=110.00 y2=20.00 is outside the 96x64 image")
    for name, (content, message) in cases.items():
        f = tmp_path / f"{name.replace(' ', '_')}.json"
        f.write_text(json.dumps(content))
        r = CliRunner().invoke(_tool("import_labels"), [str(work), str(f), "--format", "coco"])
        lines = r.output.strip().splitlines()
        assert r.exit_code == 1 and len(lines) == 1, (name, r.output)
        assert lines[0].startswith(f"Error: {f}: image ") and __import__("re").search(message, lines[0]), lines[0]
        assert not (work / "labels.json").exists()
    r = CliRunner().invoke(_tool("import_labels"), [str(work), str(good), "--format", "coco"])
    assert r.exit_code == 0 and "4 frames newly labeled" in r.output, r.output
    labels = json.loads((work / "labels.json").read_text())["frames"]
    for i, b in want.items():
        np.testing.assert_array_equal(np.asarray(labels[str(i)]["boxes"]), b)
    pool.close()


def test_config_errors(tmp_path):
    config = make_pool(tmp_path)
    with recording_backend():
        for opts, msg in ((["al.oracle='humans'"], "al.oracle must be one of simulated, human"),
                          (["al.oracle='simulated'", "al.cold_start='acquisition'"], "applies to al.oracle='human'"),
                          (["al.reference=True"], "al.reference=True trains on every pool frame"),
                          (["al.budget_unit='boxes'"], "use al.budget_unit='frames' with al.oracle='human'"),
                          (["acquisition.name='oracle_fp'"], "reads the pool's ground truth")):
            with pytest.raises(ConfigError, match=msg):
                Experiment(load_config(config, opts), tmp_path / "w", 0, progress=False)
        with pytest.raises(ExperimentError, match="need the simulated oracle"):
            Experiment(load_config(config), tmp_path / "w", 0, progress=False, only="cycle0")
    assert not (tmp_path / "w").exists()


def test_cold_start_by_acquisition_on_the_start_model(tmp_path):
    config = make_pool(tmp_path, cold_start="acquisition")
    res = _run(config, tmp_path / "run", False)
    assert "job 0" in res["waiting"]
    job0 = _job(tmp_path / "run", 0)
    assert len(job0["frames"]) == 4 and job0["made_by"] == "cold start: entropy on the start-weights model"
    assert all(e["prediction"] is not None and "score" in e for e in job0["frames"])
    scores = [e["score"] for e in job0["frames"]]
    assert len(set(scores)) > 1


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from human_helpers import recording_backend
from vidal.config import load_config
from vidal.loop import Experiment, ExperimentError
import vidal.acquisition
with recording_backend():
    res = Experiment(load_config({config!r}), {work!r}, 0, resume=True, progress=False, threads=1,
                     echo=lambda s: print(s, flush=True)).run()
print("DONE", bool(res.get("waiting")), flush=True)
"""


def test_killed_while_writing_the_job_loses_nothing(tmp_path):
    config = make_pool(tmp_path)
    pool = VideoDataset(tmp_path / "train.h5")
    work = tmp_path / "run"
    _run(config, work, False)
    _coco_file(tmp_path / "job0.json", pool, _job(work, 0))
    import_labels(work, tmp_path / "job0.json", "coco")
    script = KILL_SCRIPT.format(tests=str(REPO / "tests"), config=str(config), work=str(work))
    env = {**os.environ, "VIDAL_STALL_WRITE": "job_001.json"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO)
    try:
        for line in proc.stdout:
            if "STALL job_001.json" in line:
                break
        else:
            pytest.fail("the run never wrote job 1")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (work / "jobs" / "job_001.json.tmp").is_file() and not (work / "jobs" / "job_001.json").exists()
    trained = (work / "cycle_000" / "train.json").read_bytes()
    selection = (work / "cycle_000" / "selection.npz").read_bytes()
    res = _run(config, work, True)  # resumed: nothing retrained or reselected, the job written
    assert "waiting for labels: job 1" in res["waiting"]
    assert (work / "cycle_000" / "train.json").read_bytes() == trained
    assert (work / "cycle_000" / "selection.npz").read_bytes() == selection
    assert len(_job(work, 1)["frames"]) == 3
    pool.close()
