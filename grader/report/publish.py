"""Publishing: every output people read, rebuilt from the gradebook and the grader's records.

The gradebook is the one source of scores and comments. A manual grade, extra credit or a
comment given in formgrader, and nbgrader's late penalty, reach the summary table, the
grades CSV, the class report and the feedback pages the next time they are published:
at the end of every `grade`, or on their own with `publish` (no regrading).

Feedback pages go where nbgrader puts feedback, feedback/<student>/<assignment>/<notebook>.html,
with the submission's timestamp.txt and submission_secret.txt, so that `nbgrader
release_feedback` and students' `nbgrader fetch_feedback` hand them out.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shlex
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core import student_files
from grader.core.files import part_of, write_atomically
from grader.core.model import GRADED, MISSING, Result
from grader.core.plain_text import SpreadsheetWriter
from grader.course import coursedir, gradebook
from grader.grade import batch
from grader.report import charts, pages, reports

if TYPE_CHECKING:
    from logging import Logger

    from nbgrader.coursedir import CourseDirectory

    from grader.core.model import AssignmentSpec
    from grader.course.assignments import Layout

FEEDBACK_DIR = "feedback"
NO_SUBMISSION = "no submission"  # the reason of a student the gradebook knows who handed nothing in


def final_results(layout: Layout, course: CourseDirectory, spec: AssignmentSpec) -> dict[str, Result | None]:
    """student -> the result every output shows (None: in submitted/ but not graded yet).

    Covers everyone `nbgrader export` lists for the assignment: the kit's records, scores
    from the gradebook; a gradebook submission without a kit record (graded by stock
    autograde, say) still gets its row.
    """
    standing = gradebook.standings(course, layout.name)
    results = batch.all_results(layout)
    for student in standing.keys() - results.keys():
        results[student] = batch.stored_result(layout, student)
    final: dict[str, Result | None] = {student: _no_submission(student, spec)
                                       for student in gradebook.roster(course) - results.keys()}
    for student, result in results.items():
        mine = standing.get(student)
        if result is None and mine is not None:
            result = _from_gradebook(mine, spec)
        elif result is not None and mine is None:
            result = None  # a record the gradebook no longer has (a new gradebook): grade it again
        final[student] = reports.final(result, mine, spec.part_of) if result is not None else None
    return final


def _from_gradebook(standing, spec):
    from grader.core.model import TestResult
    tests = {}
    for key, cell in standing.cells.items():
        notebook, name = key.split("/", 1)
        tests[key] = TestResult(name, spec.part_of(name), cell.score, cell.max_score, "", cell.scored,
                                cell.manual, notebook=notebook)
    order = [f"{notebook}/{cell.grade_id}" for notebook, cell in spec.tests()]
    tests = [tests[key] for key in order if key in tests]  # answers graded by hand are not tests
    return Result(standing.student, GRADED, "graded outside the kit (no record in autograded/)", tests=tests,
                  timestamp=standing.timestamp)


def _no_submission(student, spec):
    """A student on the gradebook's roster who handed nothing in: 0, as `nbgrader export` lists them."""
    from grader.core.model import TestResult
    tests = [TestResult(c.grade_id, spec.part_of(c.grade_id), 0.0, float(c.points), "nothing handed in",
                        notebook=notebook) for notebook, c in spec.tests()]
    return Result(student, MISSING, NO_SUBMISSION, tests=tests)


def write_feedback(layout: Layout, result: Result, spec: AssignmentSpec) -> Path:
    """feedback/<student>/<assignment>/: the page, and what nbgrader release_feedback needs beside it."""
    folder = layout.feedback(result.student)
    folder.mkdir(parents=True, exist_ok=True)
    for task in spec.notebooks:  # a page per notebook, as nbgrader writes feedback
        _replace(folder / f"{task.notebook}.html", pages.feedback_page(result, spec, task.notebook))
    # release_feedback reads both for every student. The time is the one the grader checked when it read the
    # submission; the secret is the student's own (it names their feedback in the exchange) when it is a
    # plain token, read under the rules for student files, and a new one otherwise (an LMS has none).
    _replace(folder / "timestamp.txt", result.timestamp or result.graded_at)
    secret, _ = student_files.read_record(layout.submitted(result.student), "submission_secret.txt", limit=256)
    if not SECRET.fullmatch(secret or ""):  # kept byte for byte: nbgrader hashes it as it reads it
        secret, _ = student_files.read_record(folder, "submission_secret.txt", limit=256)
        secret = secret if SECRET.fullmatch(secret or "") else secrets.token_hex(32)
    _replace(folder / "submission_secret.txt", secret)
    return folder


SECRET = re.compile(r"[A-Za-z0-9_\-]{8,200}")  # what nbgrader's submit writes (a hex token), and no more


def _replace(path, text):
    """Write `text` to `path` atomically, and not at all when it is already there."""
    try:
        if path.is_file() and not path.is_symlink() and path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass  # unreadable: replace it
    write_atomically(path, text, errors="backslashreplace")


@dataclass
class Published:
    results: dict[str, Result | None]  # student -> the result every output shows (None: not graded yet)
    csv: Path
    report: Path
    course_csv: Path  # every assignment's scores, as `nbgrader export` writes them
    canvas_csv: Path  # the grades as Canvas's gradebook imports them
    no_lms_id: list[str] = field(default_factory=list)  # students the Canvas file leaves out: no LMS id recorded
    unwritten: dict[str, str] = field(default_factory=dict)  # student -> why their feedback page could not be written
    late_changed: list[str] = field(default_factory=list)  # students whose late penalty changed with the settings

    @property
    def needs_attention(self) -> bool:
        """A feedback page not written, or a submission that, as published, still needs the instructor."""
        return bool(self.unwritten) or any(reports.needs_attention(r) for r in self.results.values())


def publish(layout: Layout, spec: AssignmentSpec) -> Published:
    """Write the grades CSV, the class report and every feedback page from the gradebook; returns Published.

    A feedback page that cannot be written is named in `unwritten`; every other output is written.
    """
    course = coursedir.course_directory(layout.course_dir)
    # A due date, extension or late policy set after grading applies now, as if graded under it.
    late_changed = gradebook.reapply_late_penalties(course, layout.name)
    results = final_results(layout, course, spec)
    lms_ids = gradebook.lms_ids(course)
    out = layout.course_dir / "autograded"
    out.mkdir(exist_ok=True)
    csv_path, report = out / reports.grades_csv(layout.name), out / reports.report_html(layout.name)
    feedback = [layout.feedback(s) / f"{task.notebook}.html" for task in spec.notebooks
                for s, r in results.items() if r is not None and r.reason != NO_SUBMISSION]
    digest = _digest(results, spec, lms_ids)
    stamp = out / f"{PUBLISHED}-{layout.name}"
    done = Published(results, csv_path, report, out / reports.COURSE_CSV, out / reports.canvas_csv(layout.name),
                     late_changed=late_changed, no_lms_id=sorted(s for s in results if not lms_ids.get(s)))
    outputs = (csv_path, report, done.course_csv, done.canvas_csv, *feedback)
    if stamp.is_file() and stamp.read_text() == digest and all(p.is_file() for p in outputs):
        return done  # nothing changed since the last time: the charts take a second
    stamp.unlink(missing_ok=True)
    reports.write_grades_csv(csv_path, results, spec, lms_ids)
    reports.write_canvas_csv(done.canvas_csv, results, spec, lms_ids)
    write_course_csv(course, done.course_csv)  # with this assignment's scores as they are now
    pages.write_class_report(report, results, spec)
    for result in results.values():
        if result is not None and result.reason != NO_SUBMISSION:
            try:
                write_feedback(layout, result, spec)
            except Exception as error:  # one student's page must not cost everyone else theirs
                done.unwritten[result.student] = f"{type(error).__name__}: {error}"
    if not done.unwritten:
        stamp.write_text(digest)  # otherwise the next publish tries them again
    return done


def write_course_csv(course: CourseDirectory, path: Path) -> Path:
    """Every assignment's scores in one file, written by nbgrader's own export plugin: the same columns and
    numbers as `nbgrader export`."""
    from nbgrader.plugins.export import CsvExportPlugin

    partial = part_of(path)
    with gradebook.open_gradebook(course) as gb:
        CsvExportPlugin(to=str(partial), log=_quiet()).export(gb)
    with open(partial, newline="", encoding="utf-8") as f:  # its cells as written, none a formula
        rows = list(csv.reader(f))
    with open(partial, "w", newline="", encoding="utf-8") as f:
        out = SpreadsheetWriter(f)
        for row in rows:
            out.writerow(row)
    os.replace(partial, path)
    return path


def _quiet() -> Logger:
    import logging
    log = logging.getLogger("trusted-grader.export")
    log.setLevel(logging.WARNING)  # the plugin says "Exporting grades to ..." at INFO: the summary says where
    return log


def uses_exchange(layout: Layout) -> bool:
    """True when some submission of the assignment came through nbgrader's exchange (`nbgrader collect` copies the
    submission_secret.txt that `nbgrader submit` writes): only then does release_feedback reach the students."""
    return any(student_files.is_regular_file(layout.submitted(s), "submission_secret.txt")
               for s in batch.submitted_students(layout))


def exchange_setup(course: CourseDirectory) -> str | None:
    """The shell command that creates nbgrader's exchange, where `nbgrader release_feedback` puts the pages,
    or None when it is there and writable. The folder is the config's `c.Exchange.root`."""
    from nbgrader.exchange.default.exchange import Exchange
    root = Exchange(config=course.config, coursedir=course).root
    if os.path.isdir(root) and os.access(root, os.W_OK):
        return None
    command = f"mkdir -p {shlex.quote(root)} && chmod 1777 {shlex.quote(root)}"
    return command if os.geteuid() == 0 else f"sudo sh -c {shlex.quote(command)}"


PUBLISHED = ".published"  # in autograded/: a digest of what the outputs were last written from


def _digest(results, spec, lms_ids):
    """Changes when anything the outputs show changes, the kit's own page code included."""
    digest = hashlib.sha256(spec.fingerprint.encode())
    digest.update(json.dumps(lms_ids, sort_keys=True).encode())
    for student, result in sorted(results.items()):
        digest.update(json.dumps([student, result.to_dict() if result else None], sort_keys=True,
                                 default=str).encode())
    for module in (reports, pages, charts, sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    for template in sorted(pages.TEMPLATES.glob("*.j2")):
        digest.update(template.read_bytes())
    return digest.hexdigest()
