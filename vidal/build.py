"""Config sections → objects (design.md 5.6): datasets, detectors, acquisitions and trackers.

One builder per registry, one signature per registry, strict keys everywhere: a key the built
class does not accept is a one-line error naming the config file, the section and the valid keys.

Sections (see ``configs/_base_``):

- ``dataset = dict(train=PATH, test=PATH, val=None, generate=None)``: ``vidal-video-v1`` files,
  paths relative to the current directory; ``generate`` is the command that makes them, quoted in
  the error when a file is missing.
- ``detector = dict(backend="torchvision_frcnn", profile="cpu", **fields)``: a backend registered in
  :data:`vidal.registry.DETECTORS`; the other keys are the backend's config fields (for
  torchvision: :class:`vidal.detection.FasterRCNNConfig`).
- ``schedule = dict(epochs=..., lr=..., milestones=..., gamma=..., batch_size=..., ...)``: the
  training numbers (thesis 2.5.1), merged into the detector config.
- ``evaluation = dict(score_threshold=0.5, nms_iou=0.5)``: thesis protocol (2.5.1).

Unknown keys are errors naming the config file and listing the valid keys.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vidal.config import ConfigError, check_keys, section

DATASET_KEYS = ("train", "test", "val", "generate")
SCHEDULE_KEYS = ("epochs", "optimizer", "lr", "momentum", "weight_decay", "milestones", "gamma", "warmup_iters",
                 "batch_size", "grad_clip", "hflip", "repeat_threshold", "ema_decay", "photometric", "crop", "seed",
                 "amp")
EVALUATION_KEYS = ("score_threshold", "nms_iou", "coco", "matching", "max_frames")
#: ``matching``: how a detection is matched to a ground truth box (vidal.evaluation): "voc" (the
#: thesis's TF Object Detection API, the VOC devkit) or "coco" (pycocotools)
#: ``max_frames``: evaluate the AL loop's models on this many test frames spread evenly over the
#: split (None: all; neighbouring frames of a 25-fps video are near duplicates)
EVALUATION_DEFAULTS = {"score_threshold": 0.5, "nms_iou": 0.5, "coco": False, "matching": "voc", "max_frames": None}


def config_where(cfg: dict) -> str:
    """The config file a dict was loaded from (for error messages), "config" when built in code."""
    return str(cfg.get("_config_path_", "config"))


def accepted_keys(fn) -> tuple[set[str], bool]:
    """``(keyword names fn accepts, whether it takes **kwargs)``: the valid keys of a section whose
    values go to ``fn`` (a constructor or ``for_dataset``)."""
    import inspect

    params = inspect.signature(fn).parameters.values()
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    names = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return names - {"self", "cls", "dataset"}, var_kw


def build_acquisition(cfg: dict):
    """The acquisition of the ``acquisition`` section: ``name`` (registered in
    :data:`vidal.registry.ACQUISITIONS`) and its constructor's keyword arguments, strict;
    ``selector = dict(name=..., **options)`` (:data:`vidal.registry.SELECTORS`, default ``topk``)
    is built by :func:`vidal.selectors.build_selector` and set as the acquisition's ``selector``."""
    import vidal.acquisition  # noqa: F401 - registers the acquisitions
    from vidal.registry import ACQUISITIONS

    where = config_where(cfg)
    acq = section(cfg, "acquisition")
    selector = acq.pop("selector", None)
    name = acq.pop("name", None)
    if name is None:
        raise ConfigError(f"{where}: acquisition needs a name; valid names: {', '.join(ACQUISITIONS.names())}")
    try:
        cls = ACQUISITIONS.get(name)
    except KeyError as e:
        raise ConfigError(f"{where}: acquisition.name: {e.args[0]}") from None
    allowed, var_kw = accepted_keys(cls.__init__) if cls.__init__ is not object.__init__ else (set(), False)
    if not var_kw:
        check_keys(acq, {"name"} | allowed, f"{where}: acquisition ({name})")
    try:
        built = cls(**acq)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: acquisition ({name}): {e}") from None
    from vidal.selectors import build_selector

    built.selector = build_selector(selector, where)  # acquisition.selector (issue 17); default topk
    return built


def needs_of(acquisition) -> frozenset:
    """What an acquisition and its selector (``acquisition.selector``) need from the loop."""
    needs = frozenset(getattr(acquisition, "needs", frozenset()))
    return needs | frozenset(getattr(getattr(acquisition, "selector", None), "needs", frozenset()))


def tracker_spec(cfg: dict, *, name: str | None = None, required: bool = False,
                 default: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """``(name, options)`` of a tracker, checked against its ``for_dataset`` (strict keys).

    The ``tracker`` section gives both; ``name`` (a tool's ``--tracker``) overrides the section's
    name, and then the section's options apply only if it names the same tracker. ``required``:
    a missing section is an error; otherwise ``default`` (or None: no tracker)."""
    import vidal.tracking  # noqa: F401 - registers the trackers
    from vidal.registry import TRACKERS

    where = config_where(cfg)
    tr = section(cfg, "tracker", required=required and name is None)
    section_name = tr.pop("name", None)
    chosen = name or section_name or default
    if chosen is None:
        return None
    options = tr if section_name == chosen else {}
    try:
        cls = TRACKERS.get(chosen)
    except KeyError as e:
        raise ConfigError(f"{where if name is None else '--tracker'}: tracker.name: {e.args[0]}") from None
    allowed, var_kw = accepted_keys(cls.for_dataset)
    if not var_kw:
        check_keys(options, {"name"} | allowed, f"{where}: tracker ({chosen})")
    return chosen, options


def build_tracker(cfg: dict, spec: tuple[str, dict[str, Any]], dataset):
    """The tracker of :func:`tracker_spec` for ``dataset`` (``for_dataset``); its errors (a missing
    flow cache, weights) are one line naming the config."""
    from vidal.registry import TRACKERS

    name, options = spec
    try:
        return TRACKERS.get(name).for_dataset(dataset, **options)
    except (TypeError, ValueError, OSError) as e:
        raise ConfigError(f"{config_where(cfg)}: tracker ({name}): {e}") from None


def dataset_path(cfg: dict, split: str) -> Path:
    """Path of ``split`` (train / test / val) from the ``dataset`` section; a missing file is a
    one-line error that says how to make it."""
    ds = section(cfg, "dataset")
    check_keys(ds, DATASET_KEYS, f"{config_where(cfg)}: dataset")
    if split not in DATASET_KEYS[:3] or not ds.get(split):
        have = [s for s in DATASET_KEYS[:3] if ds.get(s)]
        raise ConfigError(f"{config_where(cfg)}: dataset has no {split!r} split; it has: {', '.join(have) or 'none'}")
    path = Path(ds[split])
    if not path.is_file():
        hint = f"; make it with: {ds['generate']}" if ds.get("generate") else ""
        raise ConfigError(f"{config_where(cfg)}: dataset.{split} = {path} does not exist{hint}")
    return path


def open_split(cfg: dict, split: str, **kwargs: Any):
    """:class:`vidal.data.VideoDataset` of ``split``, after the dataset validator's cheap checks
    (:func:`vidal.data.validate.validated`: a broken file is one line naming it, the video and the
    field, before anything reads it)."""
    from vidal.data.validate import open_dataset

    return open_dataset(dataset_path(cfg, split), **kwargs)


def detector_sections(cfg: dict) -> tuple[str, str | None, dict[str, Any]]:
    """``(backend, profile, fields)``: the detector section with the schedule merged in."""
    det = section(cfg, "detector")
    sched = section(cfg, "schedule", required=False)
    check_keys(sched, SCHEDULE_KEYS, f"{config_where(cfg)}: schedule")
    backend = det.pop("backend", "torchvision_frcnn")
    prof = det.pop("profile", None)
    clash = sorted(set(det) & set(sched))
    if clash:
        raise ConfigError(f"{config_where(cfg)}: {', '.join(clash)} set in both detector and schedule; keep one")
    return backend, prof, {**det, **sched}


def _backend_class(where: str, backend: str):
    import vidal.detection  # noqa: F401 - registers the backends
    from vidal.registry import DETECTORS

    try:
        return DETECTORS.get(backend)
    except KeyError as e:
        raise ConfigError(f"{where}: detector.backend: {e.args[0]}") from None


@contextlib.contextmanager
def _detector_errors(where: str):
    """A backend's ValueError / TypeError / ImportError (its framework missing) as one ConfigError line."""
    try:
        yield
    except (ValueError, TypeError, ImportError) as e:
        raise ConfigError(f"{where}: detector: {e}") from None


def check_detector(cfg: dict) -> None:
    """Validate the detector section (keys, values, the backend's framework and files) without
    building a model: what the AL loop runs before any training. One-line ``ConfigError``s."""
    detector_spec(cfg)


def build_detector(cfg: dict, class_names, **overrides: Any):
    """A fresh detector (a :class:`vidal.detection.base.Detector`) from the config sections."""
    backend, prof, fields = detector_sections(cfg)
    return DetectorSpec(config_where(cfg), backend, prof, fields).build(class_names, **overrides)


def evaluation_options(cfg: dict) -> dict[str, Any]:
    ev = section(cfg, "evaluation", required=False)
    check_keys(ev, EVALUATION_KEYS, f"{config_where(cfg)}: evaluation")
    ev = {**EVALUATION_DEFAULTS, **ev}
    from vidal.evaluation import MATCHING_RULES

    if ev["matching"] not in MATCHING_RULES:
        raise ConfigError(f"{config_where(cfg)}: evaluation.matching must be one of {', '.join(MATCHING_RULES)}, "
                          f"got {ev['matching']!r}")
    m = ev["max_frames"]
    if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
        raise ConfigError(f"{config_where(cfg)}: evaluation.max_frames must be an int >= 1 or None, got {m!r}")
    return ev


# ----------------------------------------------------------------------------- the experiment spec
@dataclasses.dataclass(frozen=True)
class DetectorSpec:
    """The ``detector`` and ``schedule`` sections, checked (keys, values, the backend's framework
    and files): :meth:`build` makes fresh models without checking again."""

    where: str
    backend: str
    profile: str | None
    fields: Mapping[str, Any]

    def build(self, class_names, **overrides: Any):
        """A fresh :class:`vidal.detection.base.Detector` for ``class_names`` (``overrides``: fields
        such as ``seed``)."""
        cls = _backend_class(self.where, self.backend)
        with _detector_errors(self.where):
            return cls.from_config(class_names=class_names, profile=self.profile,
                                   fields={**self.fields, **overrides})


@dataclasses.dataclass(frozen=True)
class ExperimentSpec:
    """A config checked in one pass (:func:`build_spec`): every error is found before any work.

    ``splits``: split name -> existing dataset path (validated and opened by :meth:`open`);
    ``detector`` / ``evaluation``: None when not asked for; ``acquisition``: the built acquisition
    and ``tracker``: ``(name, options)`` when the acquisition needs tracks (AL runs only)."""

    where: str
    splits: Mapping[str, Path]
    detector: DetectorSpec | None
    evaluation: Mapping[str, Any] | None
    acquisition: Any = None
    tracker: tuple[str, Mapping[str, Any]] | None = None

    @property
    def needs(self) -> frozenset:
        return needs_of(self.acquisition)

    def open(self, split: str, **kwargs: Any):
        """The :class:`vidal.data.VideoDataset` of ``split`` after the dataset validator's checks."""
        from vidal.data.validate import open_dataset

        return open_dataset(self.splits[split], **kwargs)


def detector_spec(cfg: dict) -> DetectorSpec:
    """The detector section checked (keys, values, the backend's framework and files: its
    ``check_config``, without building a model) as a :class:`DetectorSpec`."""
    where = config_where(cfg)
    backend, prof, fields = detector_sections(cfg)
    check = getattr(_backend_class(where, backend), "check_config", None)
    if check is not None:
        with _detector_errors(where):
            check(profile=prof, fields=fields)
    return DetectorSpec(where, backend, prof, MappingProxyType(dict(fields)))


def build_spec(cfg: dict, *, splits: Sequence[str] = ("train", "test"), detector: bool = True,
               evaluation: bool = True, acquisition: bool = False,
               known_needs: Sequence[str] | None = None) -> ExperimentSpec:
    """Check ``cfg`` in one pass and return its :class:`ExperimentSpec`; the sections are read in
    the order acquisition (and its tracker), detector, evaluation, datasets, and the first problem
    is a one-line :class:`ConfigError`. ``known_needs``: the needs the caller can provide (an
    acquisition needing another one is an error)."""
    where = config_where(cfg)
    acq = tracker = None
    if acquisition:
        acq = build_acquisition(cfg)
        needs = needs_of(acq)
        unknown = sorted(needs - set(known_needs)) if known_needs is not None else []
        if unknown:
            name = getattr(acq, "name", type(acq).__name__)
            raise ConfigError(f"{where}: acquisition ({name}) needs {', '.join(unknown)}; "
                              f"the loop provides {', '.join(known_needs)}")
        spec = tracker_spec(cfg, required="tracks" in needs)
        tracker = spec if "tracks" in needs else None
    det = detector_spec(cfg) if detector else None
    ev = MappingProxyType(evaluation_options(cfg)) if evaluation else None
    paths = MappingProxyType({s: dataset_path(cfg, s) for s in splits})
    return ExperimentSpec(where, paths, det, ev, acq, tracker)
