import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grader import course, release  # noqa: E402


def make_course_copy(target):
    """A course directory like this repository's (config, source, release) in `target`."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", target / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", target / "source", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "release", target / "release", ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """A course copy whose release was regenerated there (so its gradebook knows the assignment)."""
    course_dir = make_course_copy(tmp_path_factory.mktemp("course"))
    release.generate(course_dir)
    return course_dir
