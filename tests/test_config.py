"""Tests of vidal/config.py (composable config files) and vidal/build.py (sections → objects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidal.build import build_detector, dataset_path, detector_sections, evaluation_options
from vidal.config import ConfigError, apply_options, check_keys, dump, load_config, merge, parse_value

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_bases_merge_in_order_and_file_wins(tmp_path):
    write(tmp_path / "_base_/a.py", "detector = dict(lr=0.02, milestones=(5, 7))\ndataset = dict(train='x')\n")
    write(tmp_path / "_base_/b.py", "schedule = dict(epochs=3)\n")
    c = write(tmp_path / "exp/c.py", "_base_ = ['../_base_/a.py', '../_base_/b.py']\ndetector = dict(lr=0.01)\n")
    cfg = load_config(c)
    assert cfg["detector"] == {"lr": 0.01, "milestones": (5, 7)}
    assert cfg["dataset"] == {"train": "x"} and cfg["schedule"] == {"epochs": 3}
    assert cfg["_config_path_"] == str(c)


def test_delete_replaces_a_dict(tmp_path):
    write(tmp_path / "a.py", "detector = dict(lr=0.02, backbone='r18')\n")
    c = write(tmp_path / "c.py", "_base_ = 'a.py'\ndetector = dict(_delete_=True, lr=1.0)\n")
    assert load_config(c)["detector"] == {"lr": 1.0}


def test_two_bases_disagreeing_is_an_error_unless_the_file_decides(tmp_path):
    write(tmp_path / "a.py", "schedule = dict(epochs=3)\n")
    write(tmp_path / "b.py", "schedule = dict(epochs=5)\n")
    c = write(tmp_path / "c.py", "_base_ = ['a.py', 'b.py']\n")
    with pytest.raises(ConfigError, match="set differently by two bases"):
        load_config(c)
    d = write(tmp_path / "d.py", "_base_ = ['a.py', 'b.py']\nschedule = dict(epochs=9)\n")
    assert load_config(d)["schedule"] == {"epochs": 9}


def test_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.py")
    bad = write(tmp_path / "bad.py", "detector = dict(\n")
    with pytest.raises(ConfigError, match=r"bad.py:\d+: syntax error"):
        load_config(bad)
    boom = write(tmp_path / "boom.py", "x = 1 / 0\n")
    with pytest.raises(ConfigError, match="boom.py: error while executing config: ZeroDivisionError"):
        load_config(boom)
    cyc = write(tmp_path / "cyc.py", "_base_ = 'cyc2.py'\n")
    write(tmp_path / "cyc2.py", "_base_ = 'cyc.py'\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(cyc)
    nobase = write(tmp_path / "nobase.py", "_base_ = 'gone.py'\n")
    with pytest.raises(ConfigError, match="gone.py: config file not found .a _base_ of"):
        load_config(nobase)


def test_cfg_options_override_existing_keys_only():
    cfg = {"detector": {"lr": 0.02, "milestones": (5, 7)}, "name": "x"}
    out = apply_options(cfg, ["detector.lr=0.5", "detector.milestones=[1, 2]", "name=hello world"])
    assert out["detector"] == {"lr": 0.5, "milestones": [1, 2]} and out["name"] == "hello world"
    assert cfg["detector"]["lr"] == 0.02  # not modified in place
    assert apply_options(cfg, ["detector.height=3"])["detector"]["height"] == 3  # sections list what differs
    with pytest.raises(ConfigError, match="no key 'detectr' under .top level.; valid keys there: detector, name"):
        apply_options(cfg, ["detectr.lr=1"])
    with pytest.raises(ConfigError, match="no key 'x' under detector; valid keys there: lr, milestones"):
        apply_options(cfg, ["detector.x.y=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_options(cfg, ["detector.lr"])
    assert parse_value("None") is None and parse_value("3") == 3 and parse_value("abc") == "abc"


def test_dump_round_trips(tmp_path):
    cfg = {"dataset": {"train": "a.h5", "test": None}, "schedule": {"milestones": (3, 5), "lr": 1e-3}}
    p = write(tmp_path / "r.py", dump(cfg))
    back = load_config(p)
    back.pop("_config_path_")
    assert back == cfg


def test_merge_and_check_keys():
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
    assert merge({"a": 1}, {"a": {"x": 1, "_delete_": True}}) == {"a": {"x": 1}}
    check_keys({"lr": 1}, ["lr", "epochs"], "cfg: schedule")
    with pytest.raises(ConfigError, match="cfg: schedule: unknown key.s. lrr; valid keys: epochs, lr"):
        check_keys({"lrr": 1}, ["lr", "epochs"], "cfg: schedule")


def test_every_shipped_detection_config_loads_and_builds():
    for path in sorted((REPO / "configs" / "detection").glob("*.py")):
        cfg = load_config(path)
        backend, prof, fields = detector_sections(cfg)
        assert backend == "torchvision_frcnn"
        det = build_detector(cfg, ["a", "b"], weights=None) if "r50" not in path.name else None
        if det is not None:
            assert det.num_classes == 2
        assert evaluation_options(cfg)["score_threshold"] == 0.5


def test_build_errors_are_one_line(tmp_path):
    c = write(tmp_path / "c.py", "dataset = dict(train='nope.h5', generate='python tools/generate.py ...')\n"
                                 "detector = dict(profile='cpu', bogus=1)\nschedule = dict(epochs=1, lrr=3)\n")
    cfg = load_config(c)
    with pytest.raises(ConfigError, match=r"nope.h5 does not exist; make it with: python tools/generate.py"):
        dataset_path(cfg, "train")
    with pytest.raises(ConfigError, match="dataset has no 'test' split; it has: train"):
        dataset_path(cfg, "test")
    with pytest.raises(ConfigError, match="c.py: schedule: unknown key.s. lrr"):
        build_detector(cfg, ["a"])
    cfg["schedule"].pop("lrr")
    with pytest.raises(ConfigError, match="c.py: detector: unknown FasterRCNNConfig keys .'bogus'."):
        build_detector(cfg, ["a"])
    cfg["detector"] = {"backend": "nope"}
    with pytest.raises(ConfigError, match="unknown detector 'nope'; valid names: mmdet, torchvision_frcnn"):
        build_detector(cfg, ["a"])


def test_every_shipped_al_config_loads_with_a_known_backend_and_acquisition():
    """configs/al/** (torchvision and mmdet variants): each composes, names a registered detector
    backend and acquisition, and the mmdet twin of a thesis config differs only in the detector."""
    import vidal.acquisition  # noqa: F401 - registers the acquisitions
    import vidal.detection  # noqa: F401 - registers the backends
    from vidal.build import build_acquisition
    from vidal.registry import ACQUISITIONS, DETECTORS

    paths = sorted(p for p in (REPO / "configs" / "al").rglob("*.py") if not p.name.startswith("_"))  # _x.py: bases
    assert len(paths) > 30
    for path in paths:
        cfg = load_config(path)
        backend, _, _ = detector_sections(cfg)
        assert backend in DETECTORS.names(), path
        assert cfg["acquisition"]["name"] in ACQUISITIONS.names(), path
        build_acquisition(cfg)  # its arguments and selector (acquisition.selector) are valid
    for twin in sorted((REPO / "configs" / "al" / "mmdet").glob("*_mmdet-frcnn-r50-coco_synthia-al.py")):
        tv = load_config(REPO / "configs" / "al" / twin.name.replace("_mmdet-frcnn-r50-coco_", "_frcnn-r50-coco_"))
        mm = load_config(twin)
        for key in ("dataset", "schedule", "al", "acquisition", "evaluation", "tracker"):
            assert tv.get(key) == mm.get(key), (twin.name, key)
        assert mm["detector"]["backend"] == "mmdet" and tv["detector"]["backend"] == "torchvision_frcnn"
