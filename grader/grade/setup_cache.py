"""An assignment's set-up (the master's recorded answers and the canaries' verdict), kept between commands.

Setting up runs the master notebook in a process of its own and grades the master's answers and the release in
the sandbox: two to three seconds before the first student of every `grade`, every `nbgrader autograde` (each
of formgrader's Autograde buttons) included. It depends only on the instructor's side: the course's master
and release notebooks and files, its config, the limits, the confinement, the kit's own code and the Python
environment. All of them make the key; nothing a student hands in does. A set-up that needed a note (a test
judged inside the sandbox, points the master loses, a recording that failed or ran out of time) is not kept:
only a clean one is, so a passing hiccup (a slow machine) is never remembered. What the machine allows is not
kept: a command that reuses a set-up still grades the release in the sandbox before any student (batch._set_up).

Kept per user, outside every course, in $TRUSTED_GRADER_CACHE, else $XDG_CACHE_HOME/trusted-grader, else
~/.cache/trusted-grader; the newest KEEP entries stay. A set-up holds the master's answers, so none is kept in
a folder a sandbox can read (inside the Python environment, say: sandbox.readable_roots). A file that cannot be
read is a miss, never an error.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core.files import write_atomically
from grader.run import sandbox

if TYPE_CHECKING:
    from grader.core.model import AssignmentSpec
    from grader.course.assignments import Layout

ENVIRONMENT = "TRUSTED_GRADER_CACHE"
KEEP = 64  # set-ups kept: an instructor's assignments, each under a few limits


def folder() -> Path:
    """Where the set-ups are kept (see the module's docstring)."""
    if os.environ.get(ENVIRONMENT):
        return Path(os.environ[ENVIRONMENT])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "trusted-grader"


def _private(where: Path) -> bool:
    """Whether `where` is out of every sandbox's sight (no readable root holds it)."""
    real = os.path.realpath(where)
    return not any(real == root or real.startswith(root.rstrip("/") + "/") for root in sandbox.readable_roots())


def key_of(layout: Layout, spec: AssignmentSpec, delimiters: tuple[str, str]) -> str:
    """A digest of everything a set-up is made from: `spec` (the gradebook's cells, the source folder's files,
    the release, the hidden-test markers, the limits, the confinement), the master notebooks as they are on
    disk, the solution delimiters, the kit's code and the environment."""
    digest = hashlib.sha256()
    for part in (spec.fingerprint, repr(delimiters), _kit_code(), _environment()):
        digest.update(part.encode() + b"\0")
    for task in spec.notebooks:
        digest.update(repr((task.notebook, task.parts, task.limits, task.confine)).encode() + b"\0")
        digest.update(hashlib.sha256(task.release).digest())
        digest.update(hashlib.sha256(layout.master(task.notebook).read_bytes()).digest())
    return digest.hexdigest()[:32]


def load(key: str, helpers: str) -> AssignmentSpec | None:
    """The set-up kept under `key`, its trusted helper files to be written in `helpers`; None when there is
    none (or it cannot be read)."""
    path = folder() / f"{key}.pickle"
    if not _private(folder()):
        return None
    try:
        spec = pickle.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 -- damaged, cut, or from another version: made again, and replaced
        path.unlink(missing_ok=True)
        return None
    os.utime(path)  # the newest are kept
    return spec.replace(helpers=helpers, memory_cgroup="")


def save(key: str, spec: AssignmentSpec) -> None:
    """Keep a clean set-up under `key`; the oldest beyond KEEP go. A cache that cannot be written is skipped."""
    where = folder()
    if not _private(where):
        return
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomically(where / f"{key}.pickle", pickle.dumps(spec.replace(helpers="", memory_cgroup="")))
        kept = sorted(where.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


@functools.cache
def _kit_code() -> str:
    """A digest of the engine's own code: a set-up made by another version of the kit is not used."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _environment() -> str:
    """The interpreter and the packages installed beside it (their names carry their versions)."""
    names = [sys.version, sys.prefix]
    for entry in sys.path:
        if os.path.isdir(entry):
            names += sorted(n for n in os.listdir(entry) if n.endswith((".dist-info", ".egg-info", ".egg-link")))
    return hashlib.sha256("\0".join(names).encode()).hexdigest()
