import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import rnn_course  # noqa: E402
from grader import assignments, cli, release, stock  # noqa: E402
from grader.limits import Limits  # noqa: E402
from rnn_course import samples  # noqa: E402

SAMPLES = samples.sample_submissions()
# An instructor's secret in the environment of every grading process the tests start: no
# sandboxed process may see it (tests/test_trusted.py looks for it in their outputs).
INSTRUCTOR_SECRET = "instructor-secret-4711"
os.environ["RNN_KIT_TEST_SECRET"] = INSTRUCTOR_SECRET
DEMO_LIMITS = Limits(cell_timeout=5, notebook_budget=10)


def rnn(course_dir):
    """Where the RNN assignment's files are in the course directory `course_dir`."""
    return assignments.Layout(Path(course_dir), rnn_course.ASSIGNMENT)


def rnn_scores(course_dir):
    """student -> {test grade_id: auto score} of the RNN assignment in `course_dir`'s gradebook (one notebook)."""
    return {student: {grade_id: score for (_, grade_id), score in scores.items()}
            for student, scores in stock.scores(course_dir, rnn_course.ASSIGNMENT).items()}


def write_samples(course_dir, names=None):
    for student, (_, nb) in SAMPLES.items():
        if names is None or student in names:
            samples.write(nb, course_dir, student)


def kit(course_dir, *args):
    """The engine's command line on `course_dir`, as an instructor runs it; the finished process."""
    return subprocess.run([sys.executable, "-m", "grader", "--course-dir", str(course_dir), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


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
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    return course_dir


@pytest.fixture(scope="session")
def samples_course(tmp_path_factory):
    """The demo's samples graded once by the kit (in-process, so the fixture is quick to reuse)."""
    course_dir = make_course_copy(tmp_path_factory.mktemp("samples"))
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    write_samples(course_dir)
    code = cli.grade_and_report(course_dir, limits=DEMO_LIMITS)
    assert code == cli.NEEDS_ATTENTION  # the broken samples need attention
    return course_dir


def _started_here(pid):
    """True when `pid` is this test process or a process it started (still alive, so traceable)."""
    while pid > 1:
        if pid == os.getpid():
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


@pytest.fixture(scope="session", autouse=True)
def no_scratch_left_behind():
    """The suite leaves none of the kit's scratch folders in the temporary folder (SIGKILLed graders
    included: the next run sweeps theirs, and so does this check at the end). Only this run's count:
    another grader or test run on the same machine keeps its own while it works."""
    from grader import batch
    folder = Path(tempfile.gettempdir())
    before = set(folder.glob(f"{batch.SCRATCH}*"))
    yield
    batch.sweep_scratch()
    left = [path for path in set(folder.glob(f"{batch.SCRATCH}*")) - before
            if _started_here(batch.scratch_owner(path))]
    assert not left, f"scratch folders left behind by the test suite: {sorted(map(str, left))}"
