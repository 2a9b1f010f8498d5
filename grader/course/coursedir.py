"""The course directory: nbgrader's configuration and API for it, and command lines that work from where the user is."""
from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config


def course_directory(root: str | Path) -> CourseDirectory:
    """nbgrader's view of the course directory `root` (its folders, gradebook URL and course id), configured by
    its nbgrader_config.py, whose whole configuration is its `.config`.

    What the kit reads of a course needs no more: nbgrader's full API (`nbgrader_api`) imports every command and
    the exchange, a second of CPU in each of the kit's commands that has no use for them.
    """
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    _alembic_head_in_process()
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
    return CourseDirectory(config=config)


def nbgrader_api(root: str | Path) -> NbGraderAPI:
    """nbgrader's Python API for the course directory `root`, for its commands (generate_assignment)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.log import get_logger

    course = course_directory(root)
    # While it is made, nbgrader's API checks the course's exchange and logs a CRITICAL line when there is none:
    # most courses graded from a download have none, and the kit says so itself where it matters. That check logs
    # to no one; the API's own commands log as before.
    quiet = logging.getLogger("trusted-grader.exchange-check")
    quiet.disabled = True
    api = NbGraderAPI(coursedir=course, config=course.config, log=quiet)
    api.log = get_logger()
    return api


def _alembic_head_in_process():
    """Have nbgrader read its gradebook schema's version in this process.

    nbgrader stamps every new gradebook with its schema's version, which it asks of a new `alembic heads`
    process: a second for each gradebook created. The answer is the same one alembic's own Python API reads
    from nbgrader's migration scripts, in a tenth of that.
    """
    import nbgrader.api

    if getattr(nbgrader.api.get_alembic_version, "in_process", False):
        return

    @functools.cache
    def in_process():
        from alembic.script import ScriptDirectory
        from nbgrader.dbutil import ALEMBIC_DIR
        return ScriptDirectory(ALEMBIC_DIR).get_current_head()
    in_process.in_process = True
    nbgrader.api.get_alembic_version = in_process


def cell_timeout(config: Config) -> float | None:
    """nbgrader's per-cell timeout in `config` (c.ExecutePreprocessor.timeout, as stock autograde reads it), or
    None when it sets none that can be used."""
    if "ExecutePreprocessor" in config and "timeout" in config.ExecutePreprocessor:
        timeout = config.ExecutePreprocessor.timeout
        try:  # a number from a config file; text from a command line (`--ExecutePreprocessor.timeout=5`)
            seconds = float(timeout)
        except (TypeError, ValueError):
            return None
        return seconds if 0 < seconds < float("inf") else None
    return None


def find_course(start: str | Path | None = None) -> Path | None:
    """The course directory holding `start` (default: the current folder), or None.

    A course directory is one with an nbgrader_config.py, as nbgrader itself looks for it.
    """
    folder = Path(start or os.getcwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / "nbgrader_config.py").is_file():
            return candidate
    return None


# The user's PATH, as the command was started: course_directory adds this environment's scripts to the process's own,
# and a hint must work in the user's shell, not in this process.
USER_PATH = os.environ.get("PATH", "")
_chosen_course: Path | None = None  # the --course-dir of this command, for the hints it prints
_command: str | None = None  # how this command was started: "python -m <package>" or an installed command (rnn-grader)


def choose(course_dir: str | Path, command: str | None = None) -> None:
    global _chosen_course, _command
    _chosen_course = Path(course_dir).resolve()
    _command = command


def _shortest(path):
    """`path` relative to the current folder when it is inside it (`.venv/bin/python`), else absolute."""
    path = os.path.abspath(path)
    here = os.getcwd()
    return os.path.relpath(path, here) if path.startswith(here + os.sep) else path


def hint(subcommand: str) -> str:
    """`subcommand` as a command line that works as printed, from the folder the user is in."""
    script = sys.argv[0] or ""
    # Under make, PATH is the Makefile's (it puts .venv/bin first), not the user's shell's: spell paths out.
    user_path = "MAKELEVEL" not in os.environ
    if _command and " " not in _command and os.path.basename(script) == _command:
        found = shutil.which(_command, path=USER_PATH) if user_path else None
        prefix = _command if found and os.path.samefile(found, script) else shlex.quote(_shortest(script))
    else:  # `python -m <package>`; from anywhere else (a test, a script), the engine's
        python = shutil.which("python", path=USER_PATH) if user_path else None
        # The bare `python` works only if it is this environment's (a venv's python is a symlink: no resolving).
        same = python and os.path.abspath(python) == os.path.abspath(sys.executable)
        package = _command.split()[-1] if _command and _command.startswith("python -m ") else "grader"
        prefix = f"{'python' if same else shlex.quote(_shortest(sys.executable))} -m {package}"
    if _chosen_course is not None and find_course() != _chosen_course:
        prefix += f" --course-dir {shlex.quote(str(_chosen_course))}"
    return f"{prefix} {subcommand}"
