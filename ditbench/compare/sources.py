"""What BASE and HEAD name: a results directory (``results.csv`` + ``meta.json``) or a git revision.

A revision is exported (``git archive``, no repository state touched) into its own directory, and
the same sweep runs with each copy first on ``PYTHONPATH``, in its own long-lived side process
(:mod:`.interleave`). A results directory is read as it is, through :func:`ditbench.schema.read_results`.
"""
from __future__ import annotations

import io
import json
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..schema import read_results

RESULTS_FILE = "results.csv"
META_FILE = "meta.json"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its rows and where they came from."""

    label: str  # "base" | "head"
    origin: str  # the directory or the revision as given
    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Revision:
    """A git revision to measure: what the user wrote and the commit it resolved to."""

    spec: str
    sha: str


def is_results_dir(path: str | Path) -> bool:
    return (Path(path) / RESULTS_FILE).is_file()


def read_side(path: str | Path, label: str) -> Side:
    """The ok/skipped/failed rows of ``path/results.csv`` and ``path/meta.json`` (``{}`` when absent)."""
    path = Path(path)
    frame = read_results(path / RESULTS_FILE)
    meta_path = path / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{meta_path}: not JSON ({err})") from err
    if not (frame["status"] == "ok").any():
        raise ValueError(f"{path / RESULTS_FILE} has no ok rows: nothing to compare")
    return Side(label, str(path), frame, meta if isinstance(meta, dict) else {})


def repository_root(start: str | Path) -> Path:
    """The git working tree holding ``start`` (ValueError when there is none)."""
    out = _git(Path(start), "rev-parse", "--show-toplevel")
    if out is None:
        raise ValueError(f"{start} is not inside a git repository (BASE/HEAD as revisions need one; "
                         f"or pass two results directories)")
    return Path(out)


def resolve(spec: str, repo: Path) -> Revision:
    """``spec`` as a commit of ``repo`` (ValueError naming it when git does not know it)."""
    if spec.startswith("-"):
        raise ValueError(f"revision {spec!r} must not start with '-'")
    sha = _git(repo, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
    if sha is None:
        raise ValueError(f"{spec!r} is neither a results directory (no {RESULTS_FILE} there) nor a revision of the "
                         f"git repository {repo}")
    return Revision(spec, sha)


def export(revision: Revision, repo: Path, dest: Path) -> Path:
    """Write the tree of ``revision`` into ``dest`` (created; must not exist) and return it."""
    dest.mkdir(parents=True)
    proc = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", revision.sha], capture_output=True,
                          check=False)
    if proc.returncode != 0:
        raise OSError(f"git archive {revision.sha} failed: {proc.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(dest, filter="data")
    if not (dest / "ditbench" / "__init__.py").is_file():
        raise ValueError(f"revision {revision.spec} ({revision.sha[:12]}) has no ditbench/ package to measure")
    return dest


def _git(cwd: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None
