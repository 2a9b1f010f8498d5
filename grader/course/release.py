"""Generate the student release from the master notebook with nbgrader."""
from __future__ import annotations

import shutil
from pathlib import Path

from grader.core.errors import KitError
from grader.course import coursedir


def generate(root: str | Path, name: str) -> Path:
    """Run nbgrader generate_assignment for the assignment called `name`, replacing release/<name>/ entirely.

    The previous release is kept aside until nbgrader succeeds, and put back if it fails.
    """
    root = Path(root)
    release_dir = root / "release" / name
    previous = release_dir.with_name(f".{name}.previous")
    if previous.exists():
        shutil.rmtree(previous)  # left by a run that was killed
    if release_dir.exists():
        # nbgrader keeps stale files of an earlier release; start clean so the result is reproducible.
        release_dir.rename(previous)
    result = coursedir.nbgrader_api(root).generate_assignment(name, force=True, create=True)
    if not result["success"]:
        if release_dir.exists():
            shutil.rmtree(release_dir)
        if previous.exists():
            previous.rename(release_dir)
        raise KitError(_explain_failure(name, result.get("error", "") + result.get("log", "")))
    if previous.exists():
        shutil.rmtree(previous)
    return release_dir


def _explain_failure(name: str, log: str) -> str:
    if "Cannot add or remove cells" in log and "submissions associated" in log:
        return (f"the master notebook adds or removes nbgrader cells (tests, solutions or read-only cells), but "
                f"the gradebook already holds submissions of '{name}', graded against the old cells. "
                "nbgrader does not allow that, so the release was left as it was.\n"
                "Fix: undo the change to those cells; or, if no grade in the gradebook needs keeping (a trial or "
                "the demo), move gradebook.db out of the course folder and run this again.")
    return "nbgrader generate_assignment failed; the release was left as it was:\n" + log
