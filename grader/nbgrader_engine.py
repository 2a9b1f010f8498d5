"""The kit behind nbgrader's own buttons: `nbgrader autograde`, `nbgrader generate_feedback` and formgrader's.

nbgrader's converters read each notebook through an exporter that the configuration names
(`c.Autograde.exporter_class`, `c.GenerateFeedback.exporter_class`). The kit's lines in a course's
nbgrader_config.py (`enable`, written by `nbgrader-config enable`) name these two:

- `KitAutograde` grades the whole submission with the kit, as `grade --student <id> --force` grades it, but
  for publishing, which stays `publish`'s (in
  a process of its own, kept for all the students of one nbgrader command, which records the master and grades
  the canaries once: the sandbox and its limits, hidden tests judged outside, test cells put back; the
  gradebook and autograded/ written by the kit), then hands nbgrader each graded notebook as it was written.
  It never parses the student's file itself, so nothing nbgrader's preprocessors would do to it applies: the
  kit's results are the only ones written.
- `KitFeedback` writes the kit's feedback page instead of an HTML copy of the graded notebook: scores,
  messages, the instructor's comments and hand grades, never hidden test code or what it expects.

What stays stock: nbgrader's own steps around them (finding submissions, the student and submission rows,
copying the source folder's files, permissions), and every other command.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any, NoReturn, cast

from nbconvert.exporters import Exporter, NotebookExporter

if TYPE_CHECKING:
    import logging
    from collections.abc import Sequence
    from pathlib import Path

    from traitlets.config import Config

    from grader.core.model import AssignmentSpec, Result
    from grader.course.assignments import Layout

BEGIN = "# >>> course kit: trusted grading for nbgrader's own commands and formgrader's buttons >>>"
END = "# <<< course kit: trusted grading <<<"
# What generate_feedback must never copy from autograded/ into the feedback folder it hands out: the kit's
# record (with the instructor's details) and a notebook kept as the student sent it.
NOT_FOR_FEEDBACK = [".kit_result.json", "*.ipynb.as-submitted"]
MISSING = ("This course grades with the course kit's trusted grader (its lines at the end of nbgrader_config.py), "
           "and the kit is not installed in the Python that runs nbgrader. Install it there (pip install -e "
           "<the kit's folder>), or delete its lines from nbgrader_config.py (between the two 'course kit' "
           "comments) to grade with stock nbgrader.")

_MESSAGE = "\n".join(f"                {line!r}" for line in textwrap.wrap(MISSING, 84, drop_whitespace=False))

# The lines `nbgrader-config enable` writes. Without the kit installed they refuse to grade, in one line:
# grading unconfined behind the instructor's back would be worse than not grading.
BLOCK = f'''{BEGIN}
# Written by the kit's `nbgrader-config enable`; its `nbgrader-config disable` takes it out again.
try:
    from grader import nbgrader_engine as _kit
except ImportError:
    _kit = None
if _kit is not None:
    _kit.enable(c)  # noqa: F821
else:
    from nbconvert.exporters import NotebookExporter as _Stock
    from nbgrader.converters.base import NbGraderException as _Refused

    class _KitMissing(_Stock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.log.error(
{_MESSAGE}
            )
            raise _Refused("the course kit is not installed")

    c.Autograde.exporter_class = c.GenerateFeedback.exporter_class = _KitMissing  # noqa: F821
{END}
'''


def enable(c: Config) -> None:
    """Point nbgrader's autograde and generate_feedback at the kit (called from nbgrader_config.py)."""
    # By name, not as classes: formgrader shows the configuration, and serializes it to do so.
    c.Autograde.exporter_class = AUTOGRADE
    c.GenerateFeedback.exporter_class = FEEDBACK
    c.CourseDirectory.ignore.extend(NOT_FOR_FEEDBACK)


def dotted(value: type | str) -> str:
    """A class, or the name of one, as its dotted name."""
    return value if isinstance(value, str) else f"{value.__module__}.{value.__qualname__}"


def _refuse(log: logging.Logger, message: str) -> NoReturn:
    from nbgrader.converters.base import NbGraderException

    log.error(message)
    raise NbGraderException(message)


class KitAutograde(NotebookExporter):
    """Each submission graded once by the kit, in a process of its own; each notebook handed back as graded.

    nbgrader reads every notebook twice (its sanitising pass, then its grading pass): both get the kit's graded
    notebook, which is what nbgrader then writes to autograded/.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # (assignment name, student) -> notebook name -> graded notebook (JSON text), this run's
        self._graded: dict[tuple[str, str], dict[str, str]] = {}
        # assignment name -> its grading process (`main`, its output in `.log`), kept for this run's students
        self._engines: dict[str, subprocess.Popen[str]] = {}

    def from_filename(self, filename: str, resources: dict[str, Any] | None = None,  # type: ignore[override]
                      **kw: Any) -> tuple[str, dict[str, Any]]:  # the graded text (as nbconvert's text exporters)
        resources = cast("dict[str, Any]", resources)  # nbgrader passes them, with the notebook's ids
        ids = resources["nbgrader"]
        key = (ids["assignment"], ids["student"])
        if key not in self._graded:
            self._graded[key] = self._grade(*key)
        graded = self._graded[key].get(ids["notebook"])
        if graded is None:
            _refuse(self.log, f"the course kit graded {ids['student']}'s {ids['assignment']} without "
                              f"{ids['notebook']}.ipynb; run `nbgrader generate_assignment {ids['assignment']}` "
                              "again so that the gradebook and source/ agree on its notebooks.")
        resources["output_extension"] = self.file_extension
        return graded, resources

    def _grade(self, name, student):
        engine = self._engines.get(name) or self._start(name)
        started = time.monotonic()
        try:
            engine.stdin.write(json.dumps(student) + "\n")
            engine.stdin.flush()
            line = engine.stdout.readline()
        except OSError:
            line = ""
        if not line:  # it ended: say why, and start a new one for the next student
            del self._engines[name]
            _stop(engine)
            engine.log.seek(0)
            said = engine.log.read().decode(errors="replace").strip()[-2000:]
            _refuse(self.log, f"the course kit could not grade {student}'s {name}: "
                              f"{said or f'it stopped with exit code {engine.returncode}'}")
        summary = json.loads(line)
        if "error" in summary:
            _refuse(self.log, f"the course kit could not grade {student}'s {name}: {summary['error']}")
        self.log.info("Graded by the course kit in %.1f s (sandboxed, hidden tests judged outside): %s, %s",
                      time.monotonic() - started, summary["status"], summary["score"])
        if summary["status"] != "graded":
            self.log.warning("%s needs a look: %s (flagged in formgrader; the reason heads the graded notebook)",
                             student, summary["reason"])
        return summary["notebooks"]

    def _start(self, name):
        """The kit's grading process for the assignment `name` (see `main`): the course's cell timeout, or this command
        line's; what it says goes to a file, read when it fails."""
        import tempfile
        import weakref

        from grader.course import coursedir

        command = [sys.executable, "-m", "grader.nbgrader_engine", self.parent.coursedir.root, name]
        timeout = coursedir.cell_timeout(self.config)
        if timeout:
            command += ["--cell-timeout", str(timeout)]
        from grader.core.limits import Limits

        self.log.info("The course kit grades %s with a cell timeout of %s", name,
                      f"{timeout:g} s" if timeout else f"{Limits.cell_timeout:g} s (its default)")
        log = tempfile.TemporaryFile()
        engine = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        engine.log = log
        weakref.finalize(self, _stop, engine)  # when nbgrader is done with this exporter, or exits
        self._engines[name] = engine
        return engine


def _stop(engine):
    """End a grading process: no more students (it ends on its own), or stopped if it does not."""
    try:
        engine.stdin.close()
    except OSError:
        pass
    try:
        engine.wait(30)
    except subprocess.TimeoutExpired:
        engine.kill()
        engine.wait()


class KitFeedback(Exporter):
    """The kit's feedback page for each graded notebook, with the timestamp and secret release_feedback needs."""
    file_extension = ".html"
    output_mimetype = "text/html"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # assignment name -> (layout, spec, student -> final result), read once a run
        self._loaded: dict[str, tuple[Layout, AssignmentSpec, dict[str, Result | None]]] = {}

    def from_filename(self, filename: str, resources: dict[str, Any] | None = None,  # type: ignore[override]
                      **kw: Any) -> tuple[str, dict[str, Any]]:  # the page's text (as nbconvert's text exporters)
        from grader.report import pages, publish

        resources = cast("dict[str, Any]", resources)  # nbgrader passes them, with the notebook's ids
        ids = resources["nbgrader"]
        layout, spec, final = self._load(ids["assignment"])
        result = final.get(ids["student"])
        if result is None:
            _refuse(self.log, f"{ids['student']} has no grade for {ids['assignment']} yet: autograde the submission "
                              "first, then generate the feedback.")
        publish.write_feedback(layout, result, spec)
        resources["output_extension"] = self.file_extension
        return pages.feedback_page(result, spec, ids["notebook"]), resources

    def _load(self, name):
        if name not in self._loaded:
            from grader.course import assignments, coursedir
            from grader.grade import batch
            from grader.report import publish

            root = self.parent.coursedir.root
            layout = assignments.find(root, name)
            spec = batch.load_assignment(layout)
            self._loaded[name] = layout, spec, publish.final_results(layout, coursedir.nbgrader_api(root), spec)
        return self._loaded[name]


# ---------------------------------------------------------------- the course's nbgrader_config.py

def is_enabled(text: str) -> bool:
    return BEGIN in text


def with_block(text: str) -> str:
    """`text` (an nbgrader_config.py) with the kit's lines at its end, where nothing after them can undo them;
    lines written by an older kit are replaced."""
    text = without_block(text) if is_enabled(text) else text
    return text.rstrip("\n") + "\n\n" + BLOCK if text.strip() else BLOCK


def without_block(text: str) -> str:
    """`text` without the kit's lines (and the blank line `with_block` put before them); the rest as it was."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\n") == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"the kit's lines are damaged (expected one {BEGIN!r} line and, after it, one {END!r} "
                         "line): remove what is left of them by hand")
    start, end = starts[0], ends[0]
    if start > 0 and not lines[start - 1].strip():
        start -= 1
    return "".join(lines[:start] + lines[end + 1:])


def in_use(config: Config) -> tuple[dict[str, str | None], bool]:
    """{"Autograde": ..., "GenerateFeedback": ...}: the exporter each of nbgrader's converters will use under
    `config` (dotted names; None: stock's own), and whether both are the kit's."""
    used = {name: dotted(config[name].exporter_class) if "exporter_class" in config[name] else None
            for name in ("Autograde", "GenerateFeedback")}
    return used, used == {"Autograde": AUTOGRADE, "GenerateFeedback": FEEDBACK}


def switch(path: Path, on: bool) -> str:
    """Write the kit's lines into the nbgrader_config.py at `path` (`on`), or take them out; the rest of the file
    stays as it was. Returns what happened: "added", "updated", "removed" or "unchanged". ValueError: the lines
    are damaged."""
    import os

    text = path.read_text()
    if not on and not is_enabled(text):
        return "unchanged"
    changed = with_block(text) if on else without_block(text)
    if changed == text:
        return "unchanged"
    partial = path.with_name(path.name + ".part")
    partial.write_text(changed)
    os.chmod(partial, path.stat().st_mode & 0o7777)
    os.replace(partial, path)
    return ("updated" if is_enabled(text) else "added") if on else "removed"


# ---------------------------------------------------------------- the grading process

def main(argv: Sequence[str] | None = None) -> int:
    """`python -m grader.nbgrader_engine COURSE ASSIGNMENT`: grade the students named on standard input (a JSON
    string a line), one at a time, each as `grade --student ID --force` does, and answer each with a line of
    JSON: the status, the score and the graded notebooks, or {"error": why}. The master's recording and the
    canaries are made for the first and kept for the others, with the grading worker (batch.Setups):
    KitAutograde keeps one such process for all the students of an `nbgrader autograde`."""
    import argparse
    import os

    from grader.core.errors import KitError
    from grader.core.limits import Limits, budget_for
    from grader.course import assignments
    from grader.grade import batch

    parser = argparse.ArgumentParser(prog="python -m grader.nbgrader_engine")
    parser.add_argument("course_dir")
    parser.add_argument("assignment")
    parser.add_argument("--cell-timeout", type=float, default=None)
    args = parser.parse_args(argv)
    cell_timeout = args.cell_timeout or Limits.cell_timeout
    limits = Limits(cell_timeout, budget_for(cell_timeout))
    answers = os.fdopen(os.dup(1), "w")  # the answers alone: anything else printed goes to standard error
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    setups = batch.Setups(keep_workers=True)
    try:
        for line in sys.stdin:
            student = json.loads(line)
            try:
                layout = assignments.find(args.course_dir, args.assignment)
                done = batch.grade_batch(layout, [student], force=True, jobs=1, limits=limits, setups=setups)
                answer = _summary(layout, student, done.results[student])
            except KitError as error:
                answer = {"error": str(error)}
            answers.write(json.dumps(answer) + "\n")
            answers.flush()
    finally:
        setups.close()
    return 0


def _summary(layout, student, result):
    """What KitAutograde needs of a graded submission: status, reason, score and the graded notebooks' text."""
    folder = layout.autograded(student)
    notebooks = {name: (folder / f"{name}.ipynb").read_text() for name in layout.notebooks
                 if (folder / f"{name}.ipynb").is_file()}
    return {"status": result.status, "reason": result.reason, "notebooks": notebooks,
            "score": "awaiting a manual grade" if result.awaiting_manual_grade else f"{result.total:g}"}


AUTOGRADE, FEEDBACK = dotted(KitAutograde), dotted(KitFeedback)

if __name__ == "__main__":
    sys.exit(main())
