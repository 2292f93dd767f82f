"""Keeping one run's results one run's: an advisory lock on the output directory, and a check that
``--resume`` continues the *same* run.

* :class:`RunLock`: an exclusive ``flock`` on ``DIR/.ditbench.lock`` for the whole run, taken
  without waiting, so a second ``ditbench run`` writing to the same directory fails at once (with
  the holder's pid and host) instead of interleaving rows and duplicating case ids. The lock is
  advisory and released by the kernel when the process ends, even on kill -9.
* :func:`run_identity` / :func:`check_resume`: what makes rows comparable — the spec (every sweep,
  as data), the preset name, threads, device and the ditbench version — is stored in meta.json;
  ``--resume`` refuses (ValueError, exit 2) when any of it differs, listing each difference, unless
  forced, in which case the differences are returned for meta.json to record beside both values.
"""
from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOCK_FILE = ".ditbench.lock"
IDENTITY_KEYS = ("spec", "preset", "threads", "device", "version")


class RunLocked(ValueError):
    """Another run holds the output directory (a usage error: wait for it, or choose another --out)."""


class RunLock:
    """Exclusive advisory lock on ``out`` (created if needed). Use :meth:`release` or ``with``."""

    def __init__(self, out: str | Path) -> None:
        import fcntl

        self.path = Path(out) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(self._fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            self._fd = None
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLocked(f"{out} is in use by another ditbench run ({holder}); wait for it to finish "
                                f"or choose another --out") from None
            raise
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def run_identity(preset: Mapping[str, Any], *, threads: int, device: str) -> dict[str, Any]:
    """What must be equal for two runs' rows to be one table (JSON-normalised, as stored). How a
    point is timed (min_run_time, timeout_s, … — a Case's ``metadata=HOW`` fields) and the
    description are not part of it: a resumed run may finish faster, as before."""
    from dataclasses import fields

    from .. import __version__
    from .cases import Case

    how = {f.name for f in fields(Case) if f.metadata.get("identity") is False} | {"description"}
    sweeps = [{k: v for k, v in sweep.items() if k not in how} if isinstance(sweep, Mapping) else sweep
              for sweep in preset.get("sweep", [])]
    spec = json.loads(json.dumps(sweeps, default=str))
    return {"spec": spec, "preset": preset.get("name"), "threads": threads, "device": device, "version": __version__}


def stored_identity(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The identity of a stored run (meta.json); runs written before the identity was recorded
    are read from their preset, threads and device fields (their version is unknown: None)."""
    if isinstance(meta.get("identity"), Mapping):
        return dict(meta["identity"])
    preset: Mapping[str, Any] = meta["preset"] if isinstance(meta.get("preset"), Mapping) else {}
    old = run_identity(preset, threads=meta.get("threads"), device=meta.get("device"))  # type: ignore[arg-type]
    return old | {"preset": meta.get("preset_name", preset.get("name")), "version": None}


def read_stored_meta(path: str | Path) -> dict[str, Any]:
    """meta.json as a dict, or ValueError saying why it cannot be the metadata of a run."""
    path = Path(path)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); cannot check that --resume continues the same "
                         f"run — pass --force to resume anyway") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be run metadata") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} holds a JSON {type(meta).__name__}, not the object ditbench writes; "
                         f"cannot check that --resume continues the same run — pass --force to resume anyway")
    return meta


def differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry ``{"field", "stored", "now"}`` per identity field that differs (unknown stored
    values — a version never recorded — are not differences)."""
    out = []
    for key in IDENTITY_KEYS:
        if key == "version" and stored.get(key) is None:
            continue
        if stored.get(key) != current.get(key):
            out.append({"field": key, "stored": stored.get(key), "now": current.get(key)})
    return out


def describe(diffs: list[dict[str, Any]]) -> str:
    parts = []
    for diff in diffs:
        if diff["field"] == "spec":
            parts.append("spec: " + _spec_difference(diff["stored"], diff["now"]))
        else:
            parts.append(f"{diff['field']}: {diff['stored']!r} (stored) vs {diff['now']!r} (now)")
    return "; ".join(parts)


def _spec_difference(stored: Any, now: Any) -> str:
    """The first sweep field that differs, e.g. ``sweep E1 field n: [64, 128] (stored) vs [64] (now)``."""
    if not isinstance(stored, list) or not isinstance(now, list):
        return f"{_short(stored)} (stored) vs {_short(now)} (now)"
    if len(stored) != len(now):
        return f"{len(stored)} sweep(s) (stored) vs {len(now)} (now)"
    for old, new in zip(stored, now):
        if old == new:
            continue
        if not isinstance(old, dict) or not isinstance(new, dict):
            return f"{_short(old)} (stored) vs {_short(new)} (now)"
        name = new.get("experiment", "?")
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return f"sweep {name} field {key}: {_short(old.get(key))} (stored) vs {_short(new.get(key))} (now)"
    return "differs"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "…"


def check_resume(meta_path: str | Path, current: Mapping[str, Any], *, force: bool) -> list[dict[str, Any]]:
    """Refuse (ValueError) to resume a run whose identity differs from ``current``, unless ``force``;
    returns the differences (empty when the runs agree), for meta.json to record when forced."""
    meta_path = Path(meta_path)
    if not meta_path.is_file():
        if force:
            return [{"field": "meta.json", "stored": None, "now": "missing; resumed with --force"}]
        raise ValueError(f"{meta_path} is missing, so --resume cannot check that it continues the same run; "
                         f"pass --resume --force to resume anyway")
    try:
        stored = stored_identity(read_stored_meta(meta_path))
    except ValueError:
        if force:
            return [{"field": "meta.json", "stored": "unreadable", "now": "resumed with --force"}]
        raise
    diffs = differences(stored, current)
    if diffs and not force:
        raise ValueError(f"--resume would mix two different runs in {meta_path.parent}: {describe(diffs)}. "
                         f"Use the stored settings, another --out, or --resume --force to record both")
    return diffs
