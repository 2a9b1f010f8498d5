"""Where things live in the course directory (nbgrader's layout, rooted at the repository)."""
import os
import shlex
import shutil
import sys
from pathlib import Path

COURSE_DIR = Path(__file__).resolve().parent.parent
ASSIGNMENT = "rnn_step_by_step"
NOTEBOOK = "rnn_step_by_step"  # notebook name without .ipynb

SOURCE_DIR = COURSE_DIR / "source" / ASSIGNMENT
RELEASE_DIR = COURSE_DIR / "release" / ASSIGNMENT
MASTER_NOTEBOOK = SOURCE_DIR / f"{NOTEBOOK}.ipynb"
RELEASE_NOTEBOOK = RELEASE_DIR / f"{NOTEBOOK}.ipynb"
CHECKS_DATA = SOURCE_DIR / "checks_data.json"
IMAGES_DIR = SOURCE_DIR / "images"

# Test cells of the graded part and of the optional part, by nbgrader grade_id.
GRADED_FUNCTIONS = ["rnn_cell_forward", "rnn_forward", "lstm_cell_forward", "lstm_forward"]
OPTIONAL_FUNCTIONS = ["rnn_cell_backward", "rnn_backward", "lstm_cell_backward", "lstm_backward"]
# (test cell grade_id, the part it counts towards), as the grader reports them.
PARTS = tuple([(f"test_{f}", "graded") for f in GRADED_FUNCTIONS]
              + [(f"test_{f}", "optional") for f in OPTIONAL_FUNCTIONS])


def nbgrader_api(root=COURSE_DIR):
    """nbgrader's Python API for the course directory `root`, configured by its nbgrader_config.py."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    # nbgrader runs the `alembic` command it installs; make sure this Python's scripts are found.
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
    root = Path(root).resolve()
    config_file = root / "nbgrader_config.py"
    if not config_file.exists():
        raise FileNotFoundError(f"{config_file} is missing: every course directory needs its nbgrader_config.py "
                                f"(copy the one at the top of this repository).")
    config = PyFileConfigLoader(config_file.name, path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


def find_course(start=None):
    """The course directory holding `start` (default: the current folder), or None.

    A course directory is one with an nbgrader_config.py, as nbgrader itself looks for it.
    """
    folder = Path(start or os.getcwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / "nbgrader_config.py").is_file():
            return candidate
    return None


_chosen_course = None  # the --course-dir of this command, for the hints it prints


def choose(course_dir):
    global _chosen_course
    _chosen_course = Path(course_dir).resolve()


def hint(subcommand):
    """`subcommand` as a command line that works as printed, from the folder the user is in."""
    name = os.path.basename(sys.argv[0] or "")
    if name == "rnn-grader":
        found = shutil.which(name)
        prefix = name if found and os.path.samefile(found, sys.argv[0]) else os.path.abspath(sys.argv[0])
    else:
        python = shutil.which("python")
        # The bare `python` works only if it is this environment's (a venv's python is a symlink: no resolving).
        same = python and os.path.abspath(python) == os.path.abspath(sys.executable)
        prefix = f"{'python' if same else shlex.quote(sys.executable)} -m grader"
    if _chosen_course is not None and find_course() != _chosen_course:
        prefix += f" --course-dir {shlex.quote(str(_chosen_course))}"
    return f"{prefix} {subcommand}"
