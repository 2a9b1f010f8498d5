"""Generate the student release from the master notebook with nbgrader."""
import shutil
from pathlib import Path

from . import course


class KitError(Exception):
    """A problem the user can fix; the message says what and how."""


def generate(root=course.COURSE_DIR):
    """Run nbgrader generate_assignment, replacing release/<assignment>/ entirely."""
    root = Path(root)
    release_dir = root / "release" / course.ASSIGNMENT
    if release_dir.exists():
        # nbgrader keeps stale files of an earlier release; start clean so the result is reproducible.
        shutil.rmtree(release_dir)
    result = course.nbgrader_api(root).generate_assignment(course.ASSIGNMENT, force=True, create=True)
    if not result["success"]:
        raise KitError("nbgrader generate_assignment failed:\n" + result.get("error", "") + result.get("log", ""))
    return release_dir
