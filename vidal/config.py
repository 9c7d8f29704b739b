"""Composable Python config files (design.md 5.6), in the style of mmengine's.

A config file is Python that assigns plain values (dicts, lists, numbers, strings, None)::

    _base_ = ["../_base_/datasets/synthia-al-mini.py", "../_base_/detectors/frcnn-r18_cpu.py"]
    detector = dict(lr=0.01)          # merged into the detector section of the bases

Rules:

- ``_base_`` (a path or a list of paths, relative to the file) is loaded first, in order; later
  bases and then the file itself are merged on top. Two bases may not both define the same
  top-level key with different values unless the file itself overrides it (that is almost always a
  mistake in the composition; the error names both files).
- Dicts merge key by key, recursively; any other value replaces. ``dict(_delete_=True, ...)``
  replaces a dict instead of merging into it.
- Names starting with ``_`` and imported modules are not part of the config.
- ``--cfg-options a.b=c`` overrides (:func:`apply_options`): the value is read as a Python
  literal (``0.01``, ``"[3, 5]"``, ``None``, ``True``) and otherwise kept as a string. The section
  (``a``) must exist; a new key inside it (``b``) may be added, since sections list only what differs
  from their defaults (``detector.height=480`` sets a field of the detector's profile). A typo is
  still caught before any work starts: every section is checked against its valid keys where it
  is used.
- Unknown keys inside a section are an error where the section is used
  (:func:`check_keys`), never silently dropped.

We do not depend on mmengine for this: it would pull ``opencv-python``, which clashes with the
``opencv-python-headless`` we use, for about 150 lines of merging.
"""

from __future__ import annotations

import ast
import copy
import os
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config file, key or override is wrong; the message names the file and the key."""


MAX_DEPTH = 8

#: The top-level sections a vidal config may have; any other top-level name is an error (a typo
#: such as ``scheduel = dict(...)`` must not be silently ignored).
SECTIONS = ("dataset", "detector", "schedule", "evaluation", "acquisition", "al", "tracker", "temporal_coherence")


def _exec_file(path: Path) -> dict[str, Any]:
    try:
        source = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror or e})") from None
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "__vidal_config__"}
    try:
        exec(compile(source, str(path), "exec"), namespace)
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: syntax error in config: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - a config file is user code; report it in one line
        raise ConfigError(f"{path}: error while executing config: {type(e).__name__}: {e}") from None
    return namespace


def _public(namespace: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and not isinstance(v, (types.ModuleType, types.FunctionType, type))}


def merge(base: Any, override: Any) -> Any:
    """``override`` merged into ``base`` (neither is modified). Dicts merge recursively unless the
    override carries ``_delete_=True``; anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        if override.get("_delete_"):
            return {k: copy.deepcopy(v) for k, v in override.items() if k != "_delete_"}
        out = copy.deepcopy(base)
        for k, v in override.items():
            out[k] = merge(out[k], v) if k in out else _strip_delete(copy.deepcopy(v))
        return out
    return _strip_delete(copy.deepcopy(override))


def _strip_delete(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_delete(v) for k, v in value.items() if k != "_delete_"}
    return value


def _load(path: Path, depth: int, chain: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, Path]]:
    """Config of ``path`` with its bases merged, and for each top-level key the file that set it."""
    path = path.resolve()
    if path in chain:
        raise ConfigError(f"{path}: _base_ cycle: {' -> '.join(str(p) for p in chain + (path,))}")
    if depth > MAX_DEPTH:
        raise ConfigError(f"{path}: _base_ nesting deeper than {MAX_DEPTH}")
    if not path.is_file():
        where = f" (a _base_ of {chain[-1]})" if chain else ""
        raise ConfigError(f"{path}: config file not found{where}")
    namespace = _exec_file(path)
    bases = namespace.get("_base_", [])
    if isinstance(bases, (str, os.PathLike)):
        bases = [bases]
    if not isinstance(bases, (list, tuple)) or not all(isinstance(b, (str, os.PathLike)) for b in bases):
        raise ConfigError(f"{path}: _base_ must be a path or a list of paths, got {bases!r}")
    merged: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for b in bases:
        cfg, org = _load(path.parent / b, depth + 1, chain + (path,))
        own = _public(namespace)
        for key, value in cfg.items():
            if key in merged and merged[key] != value and key not in own:
                raise ConfigError(f"{path}: key {key!r} is set differently by two bases, {origin[key]} and "
                                  f"{org[key]}; set it in {path.name} or drop it from one base")
            merged[key] = merge(merged[key], value) if key in merged else value
            origin[key] = org[key]
    for key, value in _public(namespace).items():
        merged[key] = merge(merged[key], value) if key in merged else _strip_delete(value)
        origin[key] = path
    return merged, origin


def load_config(path: str | os.PathLike, options: Iterable[str] | Mapping[str, Any] = ()) -> dict[str, Any]:
    """Load ``path`` with its ``_base_`` files and apply ``options`` (``"a.b=value"`` strings or a
    ``{"a.b": value}`` mapping). Returns a nested plain dict with ``_config_path_`` (str) added."""
    cfg, origin = _load(Path(path), 0, ())
    unknown = sorted(k for k in cfg if k not in SECTIONS)
    if unknown:
        raise ConfigError(f"{origin[unknown[0]]}: unknown top-level section {unknown[0]!r}; valid sections: "
                          f"{', '.join(SECTIONS)} (fix the name, or prefix a helper variable with _)")
    cfg = apply_options(cfg, options, where=str(path))
    cfg["_config_path_"] = str(Path(path))
    return cfg


def parse_value(text: str) -> Any:
    """``--cfg-options`` value: a Python literal when it parses as one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_options(cfg: dict[str, Any], options: Iterable[str] | Mapping[str, Any], *,
                  where: str = "config") -> dict[str, Any]:
    """Return ``cfg`` with dotted-key overrides applied; every key but the last must exist."""
    items = options.items() if isinstance(options, Mapping) else [_split_option(o) for o in options]
    out = copy.deepcopy(cfg)
    for key, value in items:
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if not isinstance(node, dict) or (part not in node and not (last and i > 0)):
                valid = sorted(k for k in node if not str(k).startswith("_")) if isinstance(node, dict) else []
                prefix = ".".join(parts[:i]) or "(top level)"
                raise ConfigError(f"{where}: --cfg-options {key}: no key {part!r} under {prefix}; "
                                  f"valid keys there: {', '.join(map(str, valid)) or '(none)'}")
            if last:
                node[part] = merge(node[part], value) if isinstance(value, dict) and part in node else value
            else:
                node = node[part]
    return out


def _split_option(option: str) -> tuple[str, Any]:
    key, sep, value = option.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--cfg-options {option!r}: expected KEY=VALUE, e.g. detector.lr=0.01")
    return key.strip(), parse_value(value.strip())


def check_keys(section: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Raise :class:`ConfigError` naming ``where`` when ``section`` has keys outside ``allowed``."""
    allowed = set(allowed)
    unknown = sorted(k for k in section if k not in allowed and not str(k).startswith("_"))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; valid keys: "
                          f"{', '.join(sorted(allowed))}")


def section(cfg: Mapping[str, Any], name: str, *, required: bool = True) -> dict[str, Any]:
    """``cfg[name]`` as a dict; a missing required section names the config file."""
    where = cfg.get("_config_path_", "config")
    if name not in cfg:
        if required:
            raise ConfigError(f"{where}: no {name!r} section; add `{name} = dict(...)` or a _base_ that has one")
        return {}
    value = cfg[name]
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {name!r} must be a dict, got {type(value).__name__}")
    return dict(value)


def dump(cfg: Mapping[str, Any]) -> str:
    """Python source that :func:`load_config` and :func:`read_snapshot` read back to ``cfg`` (the
    work-dir snapshot: one ``name = <Python literal>`` line per section)."""
    lines = ["# resolved vidal config (all _base_ files merged, --cfg-options applied)"]
    for key, value in cfg.items():
        if not str(key).startswith("_"):
            lines.append(f"{key} = {value!r}")
    return "\n".join(lines) + "\n"


def read_snapshot(path: str | os.PathLike) -> dict[str, Any]:
    """A config snapshot written by :func:`dump` (a work dir's ``config.py``), read without executing
    it: every statement must be ``name = <Python literal>`` (``ast.literal_eval``), so a work dir
    from someone else runs no code. Returns the sections with ``_config_path_`` added, as
    :func:`load_config` does; anything else is a one-line :class:`ConfigError` naming the line."""
    path = Path(path)
    try:
        source = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config snapshot ({e.strerror or e})") from None
    try:
        tree = ast.parse(source, str(path))
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: syntax error in config snapshot: {e.msg}") from None
    cfg: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ConfigError(f"{path}:{node.lineno}: not a config snapshot (only `name = <Python literal>` lines, "
                              f"as vidal.config.dump writes them; a snapshot is read, never executed)")
        try:
            cfg[node.targets[0].id] = ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ConfigError(f"{path}:{node.lineno}: {node.targets[0].id} is not a Python literal (a config "
                              f"snapshot is read, never executed)") from None
    cfg["_config_path_"] = str(path)
    return cfg
