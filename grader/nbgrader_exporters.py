"""nbgrader's exporters that grade with the kit (named in the course's configuration by nbgrader_engine.py).

- `KitAutograde` grades the whole submission with the kit, as `grade --student <id> --force` grades it, but
  for publishing, which stays `publish`'s (in
  a process of its own, kept for all the students of one nbgrader command, which records the master and grades
  the canaries once: the sandbox and its limits, hidden tests judged outside, test cells put back; the
  gradebook and autograded/ written by the kit), then hands nbgrader each graded notebook as it was written.
  It never parses the student's file itself, so nothing nbgrader's preprocessors would do to it applies: the
  kit's results are the only ones written.
- `KitFeedback` writes the kit's feedback page instead of an HTML copy of the graded notebook: scores,
  messages, the instructor's comments and hand grades, never hidden test code or what it expects.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn, cast

from nbconvert.exporters import Exporter, NotebookExporter

if TYPE_CHECKING:
    import logging
    from collections.abc import Sequence

    from grader.core.model import AssignmentSpec, Result
    from grader.course.assignments import Layout


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

        command = [sys.executable, "-m", "grader.nbgrader_exporters", self.parent.coursedir.root, name]
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
            self._loaded[name] = layout, spec, publish.final_results(layout, coursedir.course_directory(root), spec)
        return self._loaded[name]


# ---------------------------------------------------------------- the grading process

def main(argv: Sequence[str] | None = None) -> int:
    """`python -m grader.nbgrader_exporters COURSE ASSIGNMENT`: grade the students named on standard input (a JSON
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

    parser = argparse.ArgumentParser(prog="python -m grader.nbgrader_exporters")
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


if __name__ == "__main__":
    sys.exit(main())
