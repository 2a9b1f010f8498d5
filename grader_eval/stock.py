"""Stock `nbgrader autograde`, run as an instructor would run it, for comparison.

The benchmark times it against the kit's grader, and the tests check that the kit
gives every ordinary submission the same per-test scores as stock nbgrader.
"""
import os
import subprocess
import sys
import warnings
from pathlib import Path

from sqlalchemy.exc import SAWarning

from grader.core import scratch
from grader.course import coursedir


# Stock nbgrader's own exporters, whatever the course's config names (its config may hand them to the kit: see
# nbgrader_engine.py); the command line wins over the config file.
STOCK = ["--Autograde.exporter_class=nbconvert.exporters.NotebookExporter",
         "--GenerateFeedback.exporter_class=nbconvert.exporters.HTMLExporter"]


def environment():
    """This process's environment with its own Python's folder first on PATH, where nbgrader finds its commands
    (alembic, jupyter), as in an instructor's activated environment."""
    return dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))


def autograde(course_dir, assignment, timeout=None):
    """Run `nbgrader autograde <assignment>` on every submission of the course directory, in one command.

    `timeout` sets nbgrader's per-cell timeout in seconds. Returns the finished process.
    """
    command = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--force", *STOCK]
    if timeout is not None:
        command.append(f"--ExecutePreprocessor.timeout={timeout}")
    env = environment()
    return subprocess.run(command, cwd=course_dir, env=env, capture_output=True, text=True)


def scores(course_dir, assignment):
    """student -> {(notebook, grade_id): auto score} for every graded submission of `assignment` in the gradebook."""
    from nbgrader.api import Gradebook

    warnings.filterwarnings("ignore", category=SAWarning)
    course = coursedir.course_directory(course_dir)
    found = {}
    with Gradebook(course.db_url, course.course_id) as gb:
        for submission in gb.find_assignment(assignment).submissions:
            found[submission.student_id] = {(nb.name, g.name): g.auto_score
                                            for nb in submission.notebooks for g in nb.grades}
    return found


def export(course_dir):
    """student -> the row `nbgrader export` writes (numbers as floats), run as an instructor would run it."""
    import csv
    import tempfile

    env = environment()
    with tempfile.TemporaryDirectory(prefix=scratch.prefix("export")) as folder:
        target = Path(folder) / "grades.csv"
        subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--CsvExportPlugin.to={target}"],
                       cwd=course_dir, env=env, capture_output=True, text=True, check=True)
        with open(target) as f:
            rows = list(csv.DictReader(f))
    numbers = ("raw_score", "late_submission_penalty", "score", "max_score")
    return {row["student_id"]: {k: (float(v) if k in numbers else v) for k, v in row.items()} for row in rows}
