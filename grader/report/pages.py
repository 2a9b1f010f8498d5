"""The HTML pages people read: each student's feedback page and the class report.

Both are Jinja2 templates (grader/report/templates/) with autoescaping on: every value handed to a
template is escaped, so nothing a student wrote (a message, a name, a comment) can become markup.
Only the report's charts are passed as markup: matplotlib writes them and escapes their text.

Feedback pages show each test's result and the student's message (`TestResult.message`), never the hidden
test code, a traceback or anything a hidden check produced; the class report reads the instructor's
(`TestResult.detail`), which keeps the whole failure.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, TYPE_CHECKING

from grader.core.model import (CRASHED, ERROR, GRADED, INVALID, MISSING, NOT_RUN, RESTORED, STATUSES, TAMPERING,
                               TIMED_OUT)
from grader.core.plain_text import counted, verb
from grader.report import charts
from grader.report.reports import (attention_line, graded_by_hand, inside_labels, label_of, needs_attention, parts,
                                   PENDING, test_labels, unconfined, UNCONFINED_WARNING)

if TYPE_CHECKING:
    from markupsafe import Markup

    from grader.core.model import AssignmentSpec, Result

LISTED = 10  # students in each of the report's short lists (lowest scores, slowest)
TEMPLATES = Path(__file__).with_name("templates")


@lru_cache(maxsize=1)
def _templates():
    import jinja2  # here: pages are written once per publish, not on every import of the package

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(template: str, **values: Any) -> str:
    return _templates().get_template(template).render(**values)


def _number(value):
    return f"{value:g}"


# ---------------------------------------------------------------- feedback

# Why a submission was not simply graded, in the student's words. The notes after it give the details.
_STUDENT_STATUS = {
    INVALID: "The grader could not open your notebook: {reason}. Your instructor will grade it by hand; until "
             "then it has no score. If you still have the notebook, open it in Jupyter, save it, and send "
             "that copy to your instructor.",
    MISSING: "The grader found no {notebook}.ipynb in your submission ({reason}). Your instructor will look at "
             "what you handed in; until then it has no score.",
    ERROR: "The grader could not grade your notebook because of a problem on its side, not yours. Your "
           "instructor will grade it; until then it has no score.",
    TAMPERING: "Some tests passed when your notebook ran, but the grader's own check of the very same outputs "
               "did not. Those tests score 0 for now, and your instructor will look at your notebook.",
    TIMED_OUT: "Part of your notebook ran out of time and was stopped, so the tests that needed it score nothing. "
               "The note below says where; look there for an endless loop or a step that is far too slow.",
    CRASHED: "Your notebook stopped before its end, so the tests after that point score nothing. The note below "
             "says where and why.",
    RESTORED: "Some test cells of your notebook were changed or missing. The grader checked your answers with the "
              "test cells as they were handed out to you; the note below names them.",
}


def student_status(result: Result, spec: AssignmentSpec) -> str | None:
    """Why `result` is not plainly graded, for the student; None when it is."""
    if graded_by_hand(result):
        return "Your instructor graded this submission by hand: the scores below are theirs."
    if result.status == GRADED:
        return None
    return _STUDENT_STATUS[result.status].format(reason=result.reason,
                                                 notebook=" or ".join(t.notebook for t in spec.notebooks))


def feedback_page(result: Result, spec: AssignmentSpec, notebook: str | None = None) -> str:
    """The student's page: scores as the gradebook has them, what to look at, the instructor's comments.
    With `notebook`, the tests of that notebook only (the scores stay the assignment's)."""
    graded_max, optional_max = parts(spec)
    tests, answers = [], []
    for test in result.tests:
        if notebook and spec.several and test.notebook != notebook:
            continue
        if test.by_hand:  # an answer your instructor grades: its points, or that it waits
            answers.append({"label": label_of(spec, test), "optional": test.part == "optional",
                            "points": (f"{test.score:g}" if test.scored else "waiting") + f" / {test.max_score:g}"})
            continue
        outcome = "waiting" if not test.scored else "passed" if test.passed else "failed"
        shown = outcome == "failed" and result.status not in NOT_RUN
        tests.append({"label": label_of(spec, test), "optional": test.part == "optional", "outcome": outcome,
                      "manual": test.scored and test.manual, "message": test.message if shown else "",
                      "points": (f"{test.score:g}" if test.scored else "-") + f" / {test.max_score:g}"})
    why = student_status(result, spec)
    notes = ([why] if why else []) + (result.notes if result.status != TAMPERING else [])
    several = spec.several
    # A comment is shown on its own notebook's page only.
    comments = [(name.split("/", 1)[-1], text) for name, text in sorted(result.instructor_comments.items())
                if not (several and notebook) or name.split("/", 1)[0] == notebook]
    page_of = notebook if several and notebook else None
    return render(
        "feedback.html.j2", title=f"Feedback: {spec.name}" + (f", {page_of}.ipynb" if page_of else ""),
        student=result.student, assignment=spec.name, notebook=page_of,
        graded_at=result.graded_at, late=result.late or bool(result.late_penalty), timestamp=result.timestamp,
        late_penalty=_number(result.late_penalty) if result.late_penalty else "", notes=notes,
        graded=_part_score(result, "graded", graded_max),
        optional=_part_score(result, "optional", optional_max) if optional_max else "",
        total=("not yet scored" if result.awaiting_manual_grade else f"{result.score:g} / {graded_max + optional_max:g}"),
        comments=comments, tests=tests, answers=answers)


# ---------------------------------------------------------------- class report

def _part_score(result, part, maximum):
    """A part's score, or that it waits while any of its cells waits for a hand grade (as the total says)."""
    if any(not t.scored for t in result.tests if t.part == part):
        return f"not yet scored / {maximum:g}"
    return f"{result.part(part):g} / {maximum:g}"


def _normalise(message):
    """Failure messages with their numbers blanked, so that the same mistake groups together."""
    first = message.splitlines()[0] if message else "(no message)"
    first = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", first)
    return first if len(first) <= 110 else first[:107] + "..."


STUDENT_COLUMNS = [("Student", "text"), ("Graded part", "number"), ("Optional part", "number"), ("Late", "text"),
                   ("Late penalty", "number"), ("Score", "number"), ("Status", "text"), ("Reasons and review flags", "text"),
                   ("Seconds", "number")]


OPTIONAL_COLUMN = 2  # its place in STUDENT_COLUMNS


def _student_row(student, result):
    """A row of the report's table of every student (STUDENT_COLUMNS); a blank where there is no number yet."""
    if result is None:
        return [student, "", "", "", "", "", PENDING, "", ""]
    scored = not result.awaiting_manual_grade
    waiting_answers = result.awaiting_manual_grade and all(t.by_hand for t in result.tests if not t.scored)
    status = result.status + (f" (answers worth {result.points_waiting:g} points await a hand grade)" if waiting_answers
                              else " (awaiting a manual grade)" if result.awaiting_manual_grade
                              else " (graded by hand)" if graded_by_hand(result) else "")
    number = (lambda value: f"{value:g}") if scored else (lambda value: "")
    return [student, number(result.part("graded")), number(result.part("optional")),
            "late" if result.late or result.late_penalty else "",
            f"{result.late_penalty:g}" if result.late_penalty else "", number(result.score), status,
            "; ".join(result.flags + result.review), f"{result.seconds:.1f}" if result.seconds else ""]


def write_class_report(page: Path | str, results: Mapping[str, Result | None], spec: AssignmentSpec) -> Path:
    """The class report at `page`, its charts inline; returns its path.

    Counts use one vocabulary: every submission has one status; "scored" are those with a score
    (automatic, or manual where the grader could not run them); the rest await a manual grade.
    """
    page = Path(page)
    graded_max, optional_max = parts(spec)
    known = {s: r for s, r in results.items() if r is not None}
    scored = {s: r for s, r in known.items() if not r.awaiting_manual_grade}
    failures = Counter((label_of(spec, t), _normalise(t.detail or t.message)) for r in scored.values()
                       for t in r.tests if t.scored and not t.passed and not t.manual and not t.by_hand)
    common = failures.most_common(10)
    rates = [(name, 100 * sum(t.passed for r in scored.values() for t in r.tests if label_of(spec, t) == name)
              / max(len(scored), 1), spec.part_of(cell.grade_id) == "optional")
             for name, cell in test_labels(spec)]
    figures = charts.class_charts([(r.part("graded"), r.part("optional")) for r in scored.values()],
                                  (graded_max, optional_max), rates, common)

    figures = {name: chart_markup(svg) for name, svg in figures.items()}
    statuses = Counter(r.status if r else PENDING for r in results.values())
    loose = unconfined(results)
    lowest = sorted(scored.items(), key=lambda item: (item[1].part("graded"), item[0]))[:LISTED]
    slowest = sorted(((s, r) for s, r in known.items() if r.seconds), key=lambda item: (-item[1].seconds, item[0]))
    values = {
        "title": f"Class report: {spec.name}",
        "unconfined": {"warning": UNCONFINED_WARNING.format(n=len(loose)), "students": loose} if loose else None,
        "summary": _summary(results, known, scored, graded_max),
        "statuses": [(s, statuses[s]) for s in STATUSES + [PENDING] if statuses[s]],
        "submissions": len(results), "charts": figures, "failures": [(t, m, n) for (t, m), n in common],
        "lowest": [{"student": s, "graded": f"{r.part('graded'):g} / {graded_max:g}", "status": r.status}
                   for s, r in lowest],
        "slowest": [{"student": s, "seconds": f"{r.seconds:.1f}", "status": r.status} for s, r in slowest[:LISTED]],
        "attention": [(s, r.status if r else PENDING, attention_line(r))
                      for s, r in sorted(results.items()) if needs_attention(r)],
        # No column for an optional part the assignment does not have.
        "columns": [c for i, c in enumerate(STUDENT_COLUMNS) if optional_max or i != OPTIONAL_COLUMN],
        "students": [[v for i, v in enumerate(_student_row(s, r)) if optional_max or i != OPTIONAL_COLUMN]
                     for s, r in sorted(results.items())],
        "flagged": [(s, r.review) for s, r in sorted(known.items()) if r.review],
        "inside": sorted({label for r in known.values() for label in inside_labels(spec, r)}),
    }
    page.write_text(render("class_report.html.j2", **values), encoding="utf-8", errors="backslashreplace")
    return page


def _summary(results, known, scored, graded_max):
    hand = sum(1 for r in scored.values() if any(t.manual for t in r.tests))
    waiting, pending = len(known) - len(scored), len(results) - len(known)
    late = sum(1 for r in known.values() if r.late or r.late_penalty)
    mean = sum(r.part("graded") for r in scored.values()) / max(len(scored), 1)
    return (f"{counted(len(results), 'submission')}: {len(scored)} {verb(len(scored), 'has', 'have')} a score "
            f"({hand} of them changed by hand), {waiting} {verb(waiting, 'awaits', 'await')} a "
            f"manual grade, {pending} {verb(pending, 'is', 'are')} not graded yet; {late} "
            f"{verb(late, 'is', 'are')} late. Mean of the graded part over the {len(scored)} with a score: "
            f"{mean:.1f} / {graded_max:g}.")


def chart_markup(svg: str) -> Markup:
    """matplotlib's SVG (it escapes its own text), the one piece of markup a page takes as it is."""
    import markupsafe  # Jinja2's own
    return markupsafe.Markup(svg)
