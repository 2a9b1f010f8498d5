"""What the command line says: every line it prints, made from the summaries the use cases return (app/, the
stages' result objects), the score table, and the progress bar the stages report through (core/progress.py). Nothing
here grades, writes or decides an exit code; cli.py does, then calls one of these. (Elsewhere only the answer to an
early Ctrl-C, grader/__main__.py, and nbgrader's hook, which answers nbgrader, not the terminal.)

Text a student could have written (a name, a file name, a reason quoting a file) goes through
plain_text.for_terminal, which turns control characters into visible escapes.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO, TYPE_CHECKING

from grader.core import model
from grader.core.plain_text import counted, for_terminal
from grader.course import coursedir
from grader.report import reports

if TYPE_CHECKING:
    from grader.app.removal import Removed
    from grader.app.workflows import Graded
    from grader.collect.manual import Imported
    from grader.core.model import AssignmentSpec, Result
    from grader.course.assignments import Layout
    from grader.report.publish import Published
    from grader.similarity.copy_report import CopyReport


def score_table(results: Mapping[str, Result | None], spec: AssignmentSpec, limit: int = 40) -> str:
    """A plain-text table, one row per student, with the gradebook's scores ("*" marks a manual grade).
    Beyond `limit` rows only the ones needing attention."""
    names = reports.labels(spec)
    graded_max, optional_max = reports.parts(spec)
    optional = [f"optional/{optional_max:g}"] if optional_max else []  # no column for a part that does not exist
    header = ["student", f"graded/{graded_max:g}"] + optional + ["late", "score"] + names + ["status"]
    chosen = sorted(results.items())
    hidden = 0
    if len(chosen) > limit:
        kept = [(s, r) for s, r in chosen if r is None or r.status != model.GRADED]
        hidden, chosen = len(chosen) - len(kept), kept
    rows = []
    for student, r in chosen:
        if r is None:
            rows.append([student, "-"] + ["-"] * len(optional) + ["", "-"] + ["-"] * len(names) + [reports.PENDING])
            continue
        cells = {reports.label_of(spec, t): (f"{t.score:g}" + ("*" if t.manual else "")) if t.scored else "-"
                 for t in r.tests}
        status = r.status + (f": {r.reason}" if r.reason else "")
        if r.awaiting_manual_grade and all(t.by_hand for t in r.tests if not t.scored):
            status += f"; answers worth {r.points_waiting:g} points await your hand grade"
        elif r.awaiting_manual_grade:
            status = "AWAITING MANUAL GRADE, " + status
        late = (f"-{r.late_penalty:g}" if r.late_penalty else "late") if (r.late or r.late_penalty) else ""
        rows.append([student, f"{r.part('graded'):g}"] + [f"{r.part('optional'):g}"] * len(optional)
                    + [late, "-" if r.awaiting_manual_grade else f"{r.score:g}"]
                    + [cells.get(n, "-") for n in names] + [status])
    rows = [[for_terminal(cell, one_line=True) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    if hidden:
        lines.append(f"... and {hidden} more students graded normally (see the grades CSV)")
    if any("*" in cell for row in rows for cell in row[:-1]):
        lines.append("* a score given by hand (in formgrader, or with manual-grades)")
    flags = reports.review_lines(dict(results))
    if flags:
        lines += ["", "Review flags (what tampering uses, found in the code; they never change a score):"]
        lines += [f"  {for_terminal(line, one_line=True)}" for line in flags]
    loose = reports.unconfined(dict(results))
    if loose:
        lines += ["", "!" * 100, reports.UNCONFINED_WARNING.format(n=len(loose)), "!" * 100]
    return "\n".join(lines)


class Progress:
    """A one-line progress bar with rate and ETA; plain lines when the output is not a terminal."""

    def __init__(self, total: int, label: str = "grading", normal: str = model.GRADED, stream: TextIO = sys.stderr,
                 width: int = 28) -> None:
        """`normal`: the status of an item that went as expected; others get a line of their own off a terminal."""
        self.total, self.label, self.normal, self.stream, self.width = total, label, normal, stream, width
        self.done, self.started, self.last_line = 0, time.monotonic(), 0.0
        self.tty = stream.isatty()

    def update(self, student: str, status: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        filled = int(self.width * self.done / self.total)
        text = (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}  "
                f"{rate:.1f}/s  ETA {int(eta) // 60}:{int(eta) % 60:02d}  "
                + for_terminal(f"{student}: {status}", one_line=True))
        if self.tty:
            self.stream.write("\r" + text[:150].ljust(150))
        elif self.done == self.total or time.monotonic() - self.last_line >= 5 or status != self.normal:
            self.stream.write(text + "\n")
            self.last_line = time.monotonic()
        self.stream.flush()

    @staticmethod
    def phase(text: str, stream: TextIO = sys.stderr) -> None:
        """A step of a batch that has no bar of its own (reading, set-up, canary, publishing): its name."""
        stream.write(for_terminal(text, one_line=True) + " ...\n")
        stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def say(text: str = "", student_text: bool = False) -> None:
    """One message on standard output; `student_text`: it may hold what a student wrote (escaped)."""
    print(for_terminal(text) if student_text else text)


def error(text: str) -> None:
    """An error, on standard error, in the form every command uses."""
    print(f"error: {text}", file=sys.stderr)


def interrupted() -> None:
    print("\nInterrupted. Nothing graded so far is lost: run the same command again to finish.", file=sys.stderr)


def unconfined_warning() -> None:
    print("WARNING: --unconfined: student code will run with your rights, outside the sandbox. Use it only "
          "to grade trusted notebooks on a machine that cannot sandbox.", file=sys.stderr)


def graded(graded: Graded, interrupted: bool, needs_attention: bool) -> None:
    """What `grade` did: the published table and files, the copy report, then the batch's own summary."""
    layout, done, published_ = graded.layout, graded.batch, graded.published
    assert done.spec is not None  # grade_batch always sets it
    published(layout, done.spec, published_)
    if graded.copies is not None:
        copy_report(graded.copies)
    if graded.copies_error:
        say(f"Copy report not written ({graded.copies_error}); the grades are all written. Run "
            f"`{coursedir.hint('copies ' + layout.name)}` to try again.", student_text=True)
    rate = f" ({len(done.graded) / done.seconds:.1f} per second)" if done.graded and done.seconds else ""
    say(f"\n{layout.name}: graded {counted(len(done.graded), 'submission')} in {done.seconds:.1f} s{rate}; "
        f"{len(done.unchanged)} unchanged since their last grading {'was' if len(done.unchanged) == 1 else 'were'} "
        "not graded again"
        + (f" (use `{coursedir.hint(f'grade {layout.name} --force')}` to regrade them)." if done.unchanged else "."))
    for note in done.notes:
        say(f"Note: {note}")
    for student, why in sorted(done.kept.items()):
        say(f"KEPT PREVIOUS RESULT for {student}: {why}", student_text=True)
    if done.misplaced:
        say(f"\nNOT GRADED ({counted(len(done.misplaced), 'notebook or folder', 'notebooks or folders')} in "
            "submitted/ that the grader does not read):")
        for path, fix in done.misplaced:
            say(f"  {path}: {fix}", student_text=True)
    if interrupted:
        print(f"\nInterrupted: {counted(len(done.pending), 'submission')} "
              f"{'was' if len(done.pending) == 1 else 'were'} not graded. Run the same command again "
              "to grade them; the ones already graded are kept.", file=sys.stderr)
    elif needs_attention:
        say("\nSome submissions need your attention: see the status column and the class report.")


def published(layout: Layout, spec: AssignmentSpec, done: Published) -> None:
    """The score table and where everything published went, with what to do next."""
    from grader.course import gradebook
    from grader.report import publish

    shown = done.results
    say()
    say(score_table({s: shown[s] for s in sorted(shown)}, spec))
    if done.late_changed:
        say(f"\nLate penalties now follow the course's due date and late policy: changed for "
            f"{counted(len(done.late_changed), 'student')} "
            f"({', '.join(done.late_changed[:10])}{', ...' if len(done.late_changed) > 10 else ''}).",
            student_text=True)
    for student, why in sorted(done.unwritten.items()):
        say(f"FEEDBACK PAGE NOT WRITTEN for {student}: {why}. Run `{coursedir.hint('publish ' + layout.name)}` "
            "again once it is fixed; everything else is published.", student_text=True)
    course = coursedir.course_directory(layout.course_dir)
    exchange = publish.uses_exchange(layout)
    say(f"\nScores are the gradebook's ({course.db_url}): manual grades, "
        "extra credit and comments from formgrader included, as `nbgrader export` shows them.\n"
        f"Grades CSV:     {done.csv}\nClass report:   {done.report}\nCourse CSV:     {done.course_csv} "
        "(every assignment, as `nbgrader export` writes it)\n"
        f"Canvas CSV:     {done.canvas_csv} "
        + ("(no student has a Canvas user ID: `collect` records them from a Canvas download)\n"
           if len(done.no_lms_id) == len(shown) else "(in Canvas: Grades, Import)\n") +
        f"Feedback pages: {layout.course_dir.resolve() / 'feedback'}/<student>/{layout.name}/"
        f"<notebook>.html ("
        + (f"hand them out with `nbgrader release_feedback {layout.name}`, or through your LMS)"
           if exchange else "hand them out through your LMS: these students did not hand in through nbgrader's "
                            "exchange, which release_feedback uses)"))
    if done.no_lms_id and len(done.no_lms_id) < len(shown):
        say(f"The Canvas CSV leaves out {counted(len(done.no_lms_id), 'student')} with no Canvas user ID "
            f"({', '.join(done.no_lms_id[:10])}{', ...' if len(done.no_lms_id) > 10 else ''}): "
            "`collect` records it from a Canvas download's file names; grade them by hand in Canvas.",
            student_text=True)
    setup = publish.exchange_setup(course) if exchange else None
    if setup and _once("exchange"):
        say(f"nbgrader's exchange, where release_feedback puts them, does not exist yet (or is not writable). "
            f"Create it once, for you and your students:\n    {setup}\nor set c.Exchange.root in "
            "nbgrader_config.py to a folder they all can write.")
    students, others = gradebook.strangers(course, layout.course_dir)
    if (students or others) and _once("strangers"):
        say("\nNote: the gradebook holds " + " and ".join(
                ([f"{counted(len(students), 'student')} ({', '.join(students[:10])}"
                  f"{', ...' if len(students) > 10 else ''})"] if students else [])
                + ([f"{counted(len(others), 'assignment')} ({', '.join(others[:10])})"] if others else []))
            + " with no folder anywhere in this course: another tool run in this folder put them there "
              "(`nbgrader quickstart` run here does). They show in the course CSV as nbgrader export shows them."
            + (f" Take the students out with `{coursedir.hint('remove-students ' + ' '.join(students[:10]))}`."
               if students else "")
            + (" Take an assignment out with `nbgrader db assignment remove NAME`." if others else ""),
            student_text=True)


_SAID: set[str] = set()


def _once(what: str) -> bool:
    """True the first time in this run: a notice about the course, not the assignment, is printed once."""
    if what in _SAID:
        return False
    _SAID.add(what)
    return True


def copy_report(done: CopyReport) -> None:
    """Where the copy report went and how much it reports."""
    for note in done.notes:
        say(f"Copy report: {note}", student_text=True)
    say(f"Copy report:    {done.page} (for you only; CSV: {done.csv.name}; "
        f"{counted(done.pairs, 'pair')} reported"
        + (f", {counted(done.groups, 'group')} of three or more" if done.groups else "")
        + ("; nothing changed since it was written" if done.comparison is None else "")
        + ")")


def released(name: str, path: Path) -> None:
    say(f"Release of {name} written to {path}")


def removal_planned(held: dict[str, int | None]) -> None:
    """Whom `remove-students` is about to remove, and what the gradebook holds of each."""
    for student, count in held.items():
        say(f"  {student}: " + ("not in the gradebook" if count is None else
                                f"{counted(count, 'submission')} in the gradebook"), student_text=True)


def removed(done: Removed) -> None:
    """What `removal.remove_students` did, for the instructor."""
    if done.backup:
        say(f"Gradebook backed up first to {done.backup}")
    say(f"Removed from the gradebook: {', '.join(done.students) or 'nobody'}; "
        f"{counted(len(done.folders), 'folder')} deleted", student_text=True)
    for name in done.republished:
        say(f"Published {name} again without them (grades CSVs, class report).")
    if done.copy_reports:
        say(f"The copy report{'s' if len(done.copy_reports) > 2 else ''} that named them "
            f"{'were' if len(done.copy_reports) > 2 else 'was'} deleted: the next `grade` (or "
            f"`{coursedir.hint('copies')}`) writes it again for the students who are left.")


def manual_exported(file: str, name: str, count: int, every: bool) -> None:
    """What `manual-grades export` wrote, and the command that reads it back."""
    what, whats = (("answer graded by hand", "answers graded by hand") if every else
                   ("cell waiting for a hand grade", "cells waiting for a hand grade"))
    if not count:
        say(f"Wrote {file} with its header only: no {what} in {name}"
            + ("." if every else " (`--all` lists every answer graded by hand, to change a score)."))
        return
    say(f"Wrote {file}: {counted(count, what, whats)} of {name}, with what each student wrote. Fill in `score` "
        f"(and `comment` if you like), then `{coursedir.hint(f'manual-grades import {file} --assignment {name}')}`.")


def manual_imported(file: str, done: Imported) -> None:
    """What `manual-grades import` wrote into the gradebook, or every line it refused (then nothing was written)."""
    if done.problems:
        for problem in done.problems:
            error(problem)
        print(f"Nothing was written: fix {counted(len(done.problems), 'line')} of {file} and import it again.",
              file=sys.stderr)
        return
    say(f"Gradebook backed up first to {done.backup}")
    say(f"Wrote {counted(done.scores, 'score')} and {counted(done.comments, 'comment')} into the gradebook, as "
        "formgrader writes them.")


RESTART = ("\nA Jupyter server that is already running (formgrader's) keeps the settings it started with: restart it "
           "(on a JupyterHub, stop and start your server) for its buttons to follow.")
BUTTONS = ("`nbgrader autograde`, `nbgrader generate_feedback` and formgrader's Autograde and Generate Feedback "
           "buttons")


def config_shown(path: Path, there: bool, on: bool, used: dict[str, str | None]) -> None:
    """Whether the kit's lines are in nbgrader_config.py, and what nbgrader's commands do as configured."""
    state = ("grade with the kit (sandboxed, hidden tests judged outside) and write its feedback pages" if on
             else "are stock nbgrader's (student code unconfined in a Jupyter kernel; its feedback shows the "
                  "hidden tests)")
    undone = "" if on or not there else "; something after the kit's lines sets them back: " + ", ".join(
        f"{name}.exporter_class = {value}" for name, value in used.items())
    say(f"{path}: the kit's lines are {'there' if there else 'not there'}.\n{BUTTONS} {state}{undone}.")


def config_switched(path: Path, enable: bool, done: str) -> None:
    """What `nbgrader-config enable/disable` changed (`done`: unchanged, added, updated or removed)."""
    if done == "unchanged":
        say(f"{path} already has the kit's lines: nothing changed." if enable else
            f"{path} has none of the kit's lines: nothing changed ({BUTTONS} are stock nbgrader's).")
    elif done in ("added", "updated"):
        say(f"{path}: the kit's lines {'were added at its end' if done == 'added' else 'were updated'}; the rest "
            f"of the file is as it was. {BUTTONS} now grade each submission with the kit (sandboxed, hidden tests "
            f"judged outside, flagged in formgrader when it needs a look) and write the kit's feedback pages. "
            f"Students notice nothing. To go back: `{coursedir.hint('nbgrader-config disable')}`.{RESTART}")
    else:
        say(f"{path}: the kit's lines were taken out; the rest of the file is as it was. {BUTTONS} are stock "
            f"nbgrader's again: student code runs unconfined in a Jupyter kernel, and generate_feedback's pages "
            f"show the hidden tests. `{coursedir.hint('grade')}` still grades with the kit.{RESTART}")
