"""The Label Studio round trip against a real Label Studio server (issue 16).

The server comes from the separate environment of tools/setup_annotate_env.sh (``.venv-annotate``;
label-studio pins numpy 2.2.6, vidal another numpy) or ``$VIDAL_LABEL_STUDIO``; the test is skipped,
with the reason, only when neither exists (``VIDAL_REQUIRE_LABEL_STUDIO=1``, as in .ci/run, turns the
skip into a failure). The fixture starts ``label-studio start`` on a free loopback port with a
temporary data dir (SQLite), a user and a legacy API token made without interaction and no network
(``LATEST_VERSION_CHECK=false``; the empty database migrated once by the setup script is copied in
when present), waits for ``/health`` (bounded), and stops the server's process
group in its teardown, also when the test fails. vidal talks to it with plain HTTP (urllib).

The test: a human-oracle run (the recording test-double detector) gets job 0 labelled from a COCO
file, trains cycle 0 and writes job 1 with the model's detections; export_selection writes the
Label Studio tasks; the test creates a project with the exported labelling config, connects the
exported images as local storage (and reads one back: the same PNG), imports the tasks with their
pre-annotations, submits annotations as an annotator would (the ground truth moved by a fraction of
a pixel, in percent of the image) and skips one task, exports the project JSON, imports it with
tools/import_labels.py (the skipped frame stays pending), annotates the skipped task, exports and
imports again (twice: the second changes nothing), resumes the run and checks that cycle 1 trained on
exactly those boxes (within 0.01 px) and selected new frames.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import vidal.acquisition  # noqa: F401 - registers the acquisitions
from human_helpers import annotator_boxes, make_pool, trained_boxes
from test_human_oracle import _coco_file, _job, _run, _tool
from vidal.data import VideoDataset
from vidal.human import import_labels

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 420  # the first start runs the migrations: ~100 s on 2 busy cores
TOKEN = "vidal-test-token-0123456789"


def _binary() -> Path | None:
    env = os.environ.get("VIDAL_LABEL_STUDIO")
    for p in ([Path(env)] if env else []) + [REPO / ".venv-annotate" / "bin" / "label-studio"]:
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """HTTP client of the running server (JSON in and out, the legacy token)."""

    def __init__(self, base: str, log: Path):
        self.base, self.log = base, log

    def call(self, method: str, path: str, body=None, timeout: float = 60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: HTTP {e.code}: {e.read()[:400]!r}") from None
        return raw if path.startswith("/data/") else json.loads(raw)


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    binary = _binary()
    if binary is None:
        reason = ("Label Studio is not installed: run bash tools/setup_annotate_env.sh (its own venv, "
                  ".venv-annotate) or set VIDAL_LABEL_STUDIO=/path/to/label-studio")
        if os.environ.get("VIDAL_REQUIRE_LABEL_STUDIO") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("label_studio")
    docs = root / "docs"
    docs.mkdir()
    port = _free_port()
    env = {**os.environ, "HOME": str(root), "LABEL_STUDIO_BASE_DATA_DIR": str(root / "data"),
           "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "",
           "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true", "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(docs),
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    template = binary.parent.parent / "vidal-ls-template.sqlite3"  # made by tools/setup_annotate_env.sh
    if template.is_file():  # an empty migrated database: the server skips ~100 s of migrations
        (root / "data").mkdir()
        shutil.copyfile(template, root / "data" / "label_studio.sqlite3")
    log = root / "server.log"
    t0 = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen([str(binary), "start", "--no-browser", "--host", "http://127.0.0.1",
                                 "--internal-host", "127.0.0.1", "--port", str(port), "--username", "vidal@example.com",
                                 "--password", "vidal-pw-1234", "--user-token", TOKEN, "--enable-legacy-api-token"],
                                env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        while True:
            if proc.poll() is not None:
                pytest.fail(f"label-studio exited with {proc.returncode} before answering /health:\n"
                            + log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if json.loads(r.read()).get("status") == "UP":
                        break
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() - t0 > START_TIMEOUT_S:
                pytest.fail(f"label-studio did not answer /health within {START_TIMEOUT_S} s:\n"
                            + log.read_text()[-3000:])
            time.sleep(1.0)
        print(f"label-studio answered /health after {time.monotonic() - t0:.1f} s")
        server = Server(base, log)
        server.docs, server.start_s = docs, time.monotonic() - t0
        yield server
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def _ls_result(box, name: str, W: int, H: int, k: int) -> dict:
    """What the Label Studio editor stores for a drawn rectangle: percent of the image size."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return {"id": f"a{k}", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
            "original_width": W, "original_height": H, "image_rotation": 0,
            "value": {"x": 100 * x1 / W, "y": 100 * y1 / H, "width": 100 * (x2 - x1) / W,
                      "height": 100 * (y2 - y1) / H, "rotation": 0, "rectanglelabels": [name]}}


def test_label_studio_round_trip(label_studio, tmp_path):
    ls = label_studio
    config = make_pool(tmp_path)
    pool = VideoDataset(tmp_path / "train.h5")
    work = tmp_path / "run"
    _run(config, work, False)  # cold start: job 0
    want0 = _coco_file(tmp_path / "job0.json", pool, _job(work, 0))
    import_labels(work, tmp_path / "job0.json", "coco")
    res = _run(config, work, True)  # cycle 0 trains, selects job 1 (with pre-annotations)
    assert "waiting for labels: job 1" in res["waiting"]
    job1 = _job(work, 1)

    # export for Label Studio into the server's document root
    out = ls.docs / "job1"
    r = CliRunner().invoke(_tool("export_selection"), [str(work), "--format", "label-studio", "--out", str(out),
                                                        "--url-prefix", "/data/local-files/?d=job1/", "--quiet"])
    assert r.exit_code == 0, r.output
    tasks = json.loads((out / "tasks.json").read_text())
    project = ls.call("POST", "/api/projects", {"title": "vidal job 1",
                                                 "label_config": (out / "label_config.xml").read_text()})
    pid = project["id"]
    ls.call("POST", "/api/storages/localfiles/", {"project": pid, "path": str(out / "images"), "title": "frames",
                                                  "use_blob_urls": False})
    imported = ls.call("POST", f"/api/projects/{pid}/import", tasks)
    n_pred = sum(1 for t in tasks if t.get("predictions"))
    assert imported["task_count"] == 3 and imported["prediction_count"] == n_pred == 3
    listed = ls.call("GET", f"/api/tasks/?project={pid}&page_size=100")["tasks"]
    assert len(listed) == 3 and all(t["total_predictions"] == 1 for t in listed)
    # the server serves the exported frame, byte for byte
    png = ls.call("GET", listed[0]["data"]["image"])
    assert png == (out / listed[0]["data"]["image"].split("?d=job1/", 1)[1]).read_bytes()

    # annotators: boxes from the ground truth (moved 0.37 px), one task skipped
    by_index = {t["data"]["index"]: t for t in listed}
    want1 = {}
    for k, e in enumerate(job1["frames"]):
        task = by_index[e["index"]]
        if k == 2:
            ls.call("POST", f"/api/tasks/{task['id']}/annotations/", {"result": [], "was_cancelled": True})
            continue
        b, lab = annotator_boxes(pool, e["index"])
        result = [_ls_result(x, ["bright", "dark"][c - 1], e["width"], e["height"], j)
                  for j, (x, c) in enumerate(zip(b, lab))]
        ls.call("POST", f"/api/tasks/{task['id']}/annotations/", {"result": result, "was_cancelled": False,
                                                                  "lead_time": 3.0})
        want1[e["index"]] = np.concatenate([b, lab[:, None]], 1)
    export = tmp_path / "ls_export.json"
    export.write_bytes(json.dumps(ls.call("GET", f"/api/projects/{pid}/export?exportType=JSON")).encode())
    r = CliRunner().invoke(_tool("import_labels"), [str(work), str(export), "--format", "label-studio"])
    assert r.exit_code == 0 and "2 of 3 labeled, 1 pending" in r.output, r.output
    res = _run(config, work, True)  # the skipped frame is still pending: the run waits
    assert "1 of its 3 frames still to label" in res["waiting"]

    # the skipped task annotated after all; export, import twice
    e = job1["frames"][2]
    b, lab = annotator_boxes(pool, e["index"], shift=0.61)
    ls.call("POST", f"/api/tasks/{by_index[e['index']]['id']}/annotations/",
            {"result": [_ls_result(x, ["bright", "dark"][c - 1], e["width"], e["height"], j)
                        for j, (x, c) in enumerate(zip(b, lab))], "was_cancelled": False})
    want1[e["index"]] = np.concatenate([b, lab[:, None]], 1)
    export.write_bytes(json.dumps(ls.call("GET", f"/api/projects/{pid}/export?exportType=JSON")).encode())
    r = CliRunner().invoke(_tool("import_labels"), [str(work), str(export), "--format", "label-studio"])
    assert r.exit_code == 0 and "1 frames newly labeled, 0 changed; 3 of 3 labeled" in r.output, r.output
    labels = (work / "labels.json").read_bytes()
    r = CliRunner().invoke(_tool("import_labels"), [str(work), str(export), "--format", "label-studio"])
    assert r.exit_code == 0 and "0 frames newly labeled, 0 changed" in r.output
    assert (work / "labels.json").read_bytes() == labels

    # resume: cycle 1 trains on exactly the Label Studio boxes and selects new frames
    res = _run(config, work, True)
    assert "waiting for labels: job 2" in res["waiting"]
    seen = trained_boxes(work / "cycle_001" / "model.pt")
    assert set(seen) == set(want0) | set(want1)
    for i, w in want1.items():
        assert seen[i].shape == w.shape
        np.testing.assert_allclose(seen[i][:, :4], w[:, :4], atol=0.01)
        np.testing.assert_array_equal(seen[i][:, 4], w[:, 4])
    job2 = _job(work, 2)
    assert len(job2["frames"]) == 3 and not {e["index"] for e in job2["frames"]} & set(seen)
    pool.close()
