"""What a batch leaves behind for people: the grades CSV, feedback pages, the class
report with its plots, the summary table, and the progress bar while it runs.

Feedback pages show each test's result and message, never the hidden test code or
a traceback: the messages come from `grading._message`, which drops any line of
hidden test code.
"""
import csv
import dataclasses
import html
import re
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from . import coursedir
from .plain_text import for_chart, for_spreadsheet, for_terminal
from .grading import GRADED, INVALID, MISSING, NOT_RUN, ERROR, STATUSES, TAMPERING

COURSE_CSV = "course_grades.csv"  # every assignment, in `nbgrader export`'s columns


def grades_csv(assignment):
    return f"{assignment}_grades.csv"


def report_html(assignment):
    return f"{assignment}_report.html"


PENDING = "not graded yet"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #1f2d3d; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #c8d0da; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #eef2f6; }
.pass { color: #1e7b34; } .fail { color: #b3261e; }
.note { background: #fff4e0; border-left: 4px solid #e69500; padding: .6em 1em; }
.alarm { background: #fde7e6; border: 3px solid #b3261e; padding: .8em 1em; font-weight: bold; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { white-space: pre-wrap; margin: 0; }
figure { margin: .5em 0; } figure svg { max-width: 100%; height: auto; border: 1px solid #e0e4ea; }
"""


def _page(title, body):
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _parts(assignment):
    """(graded max, optional max) from the test cells."""
    tests = [c for _, c in assignment.tests()]
    graded = sum(c.points for c in tests if assignment.part_of(c.grade_id) == "graded")
    return graded, sum(c.points for c in tests) - graded


# ---------------------------------------------------------------- the final view

def final(result, standing):
    """`result` with the gradebook's scores, late penalty and comments: what every output shows.

    The gradebook is the one source of scores: a manual grade or extra credit given in
    formgrader replaces the automatic score here as it does in `nbgrader export`.
    """
    if standing is None:
        return result
    tests = []
    for test in result.tests:
        cell = standing.cells.get(f"{test.notebook}/{test.grade_id}")
        if cell is not None:  # a test the gradebook does not hold is no grade
            tests.append(dataclasses.replace(test, score=cell.score, max_score=cell.max_score, scored=cell.scored,
                                             manual=cell.manual))
    return dataclasses.replace(result, tests=tests, late_penalty=standing.late_penalty,
                               instructor_comments=dict(standing.comments),
                               timestamp=standing.timestamp or result.timestamp)


def _cell_name(key, assignment):
    """A "<notebook>/<grade_id>" key as people read it: without the notebook when there is only one."""
    return key if assignment.several else key.split("/", 1)[-1]


def _points(test):
    return f"{test.score:g} / {test.max_score:g}" if test.scored else f"- / {test.max_score:g}"


# ---------------------------------------------------------------- feedback

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
}


def graded_by_hand(result):
    """An instructor has scored every test of a submission the grader did not grade normally: done."""
    return result.status != GRADED and bool(result.tests) and all(t.manual for t in result.tests)


def needs_attention(result):
    """Whether a submission, as published, still needs the instructor."""
    return (result is None or result.awaiting_manual_grade or bool(result.refused)
            or (result.status != GRADED and not graded_by_hand(result)))


def feedback_page(result, assignment, notebook=None):
    """The student's page: scores as the gradebook has them, what to look at, the instructor's comments.
    With `notebook`, the tests of that notebook only (the scores stay the assignment's)."""
    graded_max, optional_max = _parts(assignment)
    rows = []
    for test in result.tests:
        if notebook and assignment.several and test.notebook != notebook:
            continue
        if not test.scored:
            verdict, message = "waiting for your instructor", ""
        else:
            verdict = '<span class="pass">passed</span>' if test.passed else '<span class="fail">not passed</span>'
            message = "" if test.passed or result.status in NOT_RUN else html.escape(test.message)
            if test.manual:
                verdict += " (scored by your instructor)"
        part = " (optional)" if test.part == "optional" else ""
        rows.append(f"<tr><td><code>{html.escape(label_of(assignment, test))}</code>{part}</td><td>{verdict}</td>"
                    f"<td class=\"num\">{_points(test)}</td><td><pre>{message}</pre></td></tr>")
    notes = []
    if graded_by_hand(result):
        notes.append("Your instructor graded this submission by hand: the scores below are theirs.")
    elif result.status in _STUDENT_STATUS:
        notes.append(_STUDENT_STATUS[result.status].format(
            reason=result.reason, notebook=" or ".join(t.notebook for t in assignment.notebooks)))
    if result.status != TAMPERING:
        notes += result.notes
    notes = "".join(f"<p class=\"note\">{html.escape(n)}</p>\n" for n in notes)
    late = ""
    if result.late or result.late_penalty:
        late = ("<p class=\"note\">Your submission was late"
                + (f" (handed in {html.escape(str(result.timestamp))})" if result.timestamp else "")
                + (f". The course's late policy takes {result.late_penalty:g} points off." if result.late_penalty
                   else ". No points were taken off for it.") + "</p>\n")
    comments = "".join(f"<li><code>{html.escape(_cell_name(name, assignment))}</code>: {html.escape(text)}</li>"
                       for name, text in sorted(result.instructor_comments.items()))
    comments = f"<h2>Comments from your instructor</h2><ul>{comments}</ul>\n" if comments else ""
    total = (f"{result.score:g} / {graded_max + optional_max:g}" if not result.awaiting_manual_grade
             else "not yet scored")
    penalty = (f"<tr><td>Late penalty</td><td class=\"num\">-{result.late_penalty:g}</td></tr>"
               if result.late_penalty else "")
    body = (f"<p>Student <b>{html.escape(result.student)}</b>, assignment <b>{html.escape(assignment.name)}</b>, "
            f"graded {html.escape(result.graded_at)}.</p>\n{late}{notes}"
            f"<table><tr><th>Part</th><th>Score</th></tr>"
            f"<tr><td>Graded part</td><td class=\"num\">{result.part('graded'):g} / {graded_max:g}</td></tr>"
            f"<tr><td>Optional part (scored separately)</td>"
            f"<td class=\"num\">{result.part('optional'):g} / {optional_max:g}</td></tr>{penalty}"
            f"<tr><th>Total</th><th class=\"num\">{total}</th></tr></table>\n{comments}"
            "<table><tr><th>Test</th><th>Result</th><th>Points</th><th>What to look at</th></tr>\n"
            + "\n".join(rows) + "</table>\n"
            "<p>Tests may also check your work on cases you have not seen. A message here tells you what to "
            "look at; the checks in your notebook tell you more.</p>")
    return _page(f"Feedback: {assignment.name}", body)


# ---------------------------------------------------------------- grades CSV

def labels(assignment):
    """A name per test cell, for columns and charts: its grade_id without a `test_` prefix, after its notebook's
    name when the assignment has several."""
    return [_label(assignment, notebook, c.grade_id) for notebook, c in assignment.tests()]


def _label(assignment, notebook, grade_id):
    name = grade_id.removeprefix("test_")
    return f"{notebook}:{name}" if assignment.several else name


def label_of(assignment, test):
    return _label(assignment, test.notebook, test.grade_id)


CSV_NUMBERS = ["raw_score", "late_submission_penalty", "score", "max_score"]  # as `nbgrader export` names them


def write_grades_csv(path, results, assignment, lms_ids):
    """One row per student. Every number is the gradebook's (see `final`), so that this file and
    `nbgrader export` agree; a test waiting for a manual grade has no number of its own."""
    names = labels(assignment)
    max_score = sum(c.points for _, c in assignment.tests())
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        out = csv.writer(f)
        out.writerow(["student", "lms_id", "status", "late", "timestamp"] + CSV_NUMBERS + ["graded", "optional"]
                     + names + ["hand_graded", "reason", "graded_at", "review_flags", "confinement", "judged_inside"])
        for student, result in sorted(results.items()):
            lms = lms_ids.get(student, "")
            if result is None:
                out.writerow([student, lms, PENDING, "", "", "", "", "", f"{max_score:g}", "", ""]
                             + [""] * len(names) + ["", f"run `{coursedir.hint('grade ' + assignment.name)}` to grade "
                                                        "it", "", "", "", ""])
                continue
            scores = {label_of(assignment, t): (f"{t.score:g}" if t.scored else "") for t in result.tests}
            status = result.status + (" (awaiting a manual grade)" if result.awaiting_manual_grade else "")
            # Not scored yet: no number at all (nbgrader export writes 0), so that an LMS import records no
            # grade rather than a zero.
            def number(value, blank=result.awaiting_manual_grade):
                return "" if blank else f"{value:g}"
            out.writerow([student, lms, status, "late" if result.late else "", result.timestamp or "",
                          number(result.total), number(result.late_penalty), number(result.score), f"{max_score:g}",
                          number(result.part("graded")), number(result.part("optional"))]
                         + [scores.get(n, "") for n in names]
                         + ["; ".join(label_of(assignment, t) for t in result.tests if t.manual),
                            for_spreadsheet(result.reason), result.graded_at, for_spreadsheet("; ".join(result.review)),
                            confinement(result), "; ".join(_inside_labels(assignment, result))])
    return path


def _inside_labels(assignment, result):
    """The tests of `result` that were judged inside the sandbox only (the outside verdict could not replay them)."""
    return [_label(assignment, *key.split("/", 1)) for key in result.inside]


def confinement(result):
    return "sandboxed" if result.confined else "UNCONFINED (--unconfined): student code ran with your rights"


UNCONFINED_WARNING = ("WARNING: {n} submission(s) were graded with --unconfined: their code ran with your rights, "
                      "could read the master notebook and the gradebook, and their scores can be forged. "
                      "Grade them again without --unconfined.")


def unconfined(results):
    return sorted(s for s, r in results.items() if r is not None and not r.confined)


def review_lines(results):
    """'student: flag; flag' for each submission whose code the scan flagged."""
    return [f"{s}: " + "; ".join(r.review) for s, r in sorted(results.items()) if r is not None and r.review]


# ---------------------------------------------------------------- class report

LABEL_PT = 11  # chart text size in points: 14-15 px on screen at the page's width (tests/test_browser.py)


def _svg(fig):
    """The figure as inline SVG with its text kept as text (searchable, sharp, measurable in a browser)."""
    import io
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "rnn-kit"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figure(width, height):
    from matplotlib.figure import Figure  # here: matplotlib loads in a third of a second

    fig = Figure(figsize=(width, height))
    fig.set_layout_engine("constrained")
    return fig


def _normalise(message):
    """Failure messages with their numbers blanked, so that the same mistake groups together."""
    first = message.splitlines()[0] if message else "(no message)"
    first = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", first)
    return first if len(first) <= 110 else first[:107] + "..."


# Chart text is plain text: a `$` in a student's error message is a dollar sign, not the start of a formula.
CHART_STYLE = {"text.parse_math": False, "text.usetex": False}


def _charts(scored, assignment, common):
    """(score distribution, pass rate, common failures) as inline SVG."""
    from matplotlib import rc_context

    with rc_context(CHART_STYLE):
        return _draw_charts(scored, assignment, common)


def _draw_charts(scored, assignment, common):
    from matplotlib.ticker import MaxNLocator

    names = labels(assignment)
    graded_max, optional_max = _parts(assignment)
    with_size = {"fontsize": LABEL_PT}

    fig = _figure(9, 3.6)
    left, right = fig.subplots(1, 2)
    left.hist([r.part("graded") for r in scored], bins=range(0, int(graded_max) + 10, 5), color="#3b6ea5",
              edgecolor="white")
    left.set_title(f"Graded part (out of {graded_max:g})", **with_size)
    left.set_xlabel("points", **with_size)
    left.set_ylabel("students", **with_size)
    right.hist([r.part("optional") for r in scored], bins=range(0, int(optional_max) + 2, 1), color="#8a63b3",
               edgecolor="white")
    right.set_title(f"Optional part (out of {optional_max:g})", **with_size)
    right.set_xlabel("points", **with_size)
    for ax in (left, right):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count of students has no fractions
        ax.tick_params(labelsize=LABEL_PT)
    distribution = _svg(fig)

    fig = _figure(9, 4.2)
    ax = fig.subplots()
    rates = [100 * sum(t.passed for r in scored for t in r.tests if label_of(assignment, t) == n) / max(len(scored), 1)
             for n in names]
    colors = ["#3b6ea5" if assignment.part_of(c.grade_id) == "graded" else "#8a63b3" for _, c in assignment.tests()]
    bars = ax.bar(range(len(names)), rates, color=colors)
    ax.bar_label(bars, fmt="%.0f%%", fontsize=LABEL_PT)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylim(0, 115)
    ax.set_ylabel("% of students passing", **with_size)
    ax.set_title("Pass rate per test (purple: optional)", **with_size)
    ax.tick_params(labelsize=LABEL_PT)
    pass_rate = _svg(fig)

    fig = _figure(9, 0.55 * max(len(common), 2) + 1.4)
    ax = fig.subplots()
    # The full messages are in the table below the chart; the chart names the test and the start.
    ticks = [textwrap.shorten(for_chart(f"{fn}: {msg}"), 58, placeholder="...") for (fn, msg), _ in common][::-1]
    ax.barh(range(len(common)), [n for _, n in common][::-1], color="#b3261e")
    ax.set_yticks(range(len(common)), ticks)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("students", **with_size)
    ax.set_title("Most common failure messages", **with_size)
    ax.tick_params(labelsize=LABEL_PT)
    failures = _svg(fig)
    return distribution, pass_rate, failures


def write_class_report(page, results, assignment):
    """The class report at `page`, its charts inline; returns its path.

    Counts use one vocabulary: every submission has one status; "scored" are those with a score
    (automatic, or manual where the grader could not run them); the rest await a manual grade.
    """
    page = Path(page)
    graded_max, _ = _parts(assignment)
    known = {s: r for s, r in results.items() if r is not None}
    scored = [r for r in known.values() if not r.awaiting_manual_grade]
    failures = Counter((label_of(assignment, t), _normalise(t.message)) for r in scored for t in r.tests
                       if t.scored and not t.passed and not t.manual)
    common = failures.most_common(10)
    distribution, pass_rate, failure_chart = _charts(scored, assignment, common)

    statuses = Counter(r.status if r else PENDING for r in results.values())
    status_rows = "".join(f"<tr><td>{html.escape(s)}</td><td class=\"num\">{statuses[s]}</td></tr>"
                          for s in STATUSES + [PENDING] if statuses[s])
    status_rows += f"<tr><th>All submissions</th><th class=\"num\">{len(results)}</th></tr>"
    failure_rows = "".join(f"<tr><td><code>{html.escape(fn)}</code></td><td>{html.escape(msg)}</td>"
                           f"<td class=\"num\">{n}</td></tr>" for (fn, msg), n in common)
    attention = "".join(f"<tr><td>{html.escape(s)}</td><td>{html.escape(r.status if r else PENDING)}</td>"
                        f"<td>{html.escape(_attention(r))}</td></tr>"
                        for s, r in sorted(results.items()) if needs_attention(r))
    mean = sum(r.part("graded") for r in scored) / max(len(scored), 1)
    hand = sum(1 for r in scored if any(t.manual for t in r.tests))
    waiting = len(known) - len(scored)
    late = sum(1 for r in known.values() if r.late or r.late_penalty)
    loose = unconfined(results)
    alarm = (f"<p class=\"alarm\">{html.escape(UNCONFINED_WARNING.format(n=len(loose)))} "
             f"({html.escape(', '.join(loose))})</p>\n" if loose else "")
    flagged = "".join(f"<tr><td>{html.escape(s)}</td><td>{'<br>'.join(html.escape(f) for f in r.review)}</td></tr>"
                      for s, r in sorted(results.items()) if r is not None and r.review)
    review = ("<h2>Review flags</h2><p>What a scan of the code found that tampering uses. Flags never change a "
              "score; they say where to read.</p>"
              + (f"<table><tr><th>Student</th><th>Found</th></tr>{flagged}</table>" if flagged
                 else "<p>None.</p>"))
    inside = sorted({label for r in known.values() for label in _inside_labels(assignment, r)})
    if inside:
        review += ("\n<h2>Judged inside the sandbox only</h2><p class=\"note\">The grader could not replay these "
                   "test cells outside the students' processes (they read more of the notebook than the answers "
                   "they check), so they were judged as stock nbgrader judges them, where a determined student "
                   "could forge the result: " + ", ".join(f"<code>{html.escape(n)}</code>" for n in inside)
                   + ". The grading summary says why for each.</p>")
    pending = len(results) - len(known)
    summary = (f"{counted(len(results), 'submission')}: {len(scored)} {_verb(len(scored), 'has', 'have')} a score "
               f"({hand} of them changed by hand in formgrader), {waiting} {_verb(waiting, 'awaits', 'await')} a "
               f"manual grade, {pending} {_verb(pending, 'is', 'are')} not graded yet; {late} "
               f"{_verb(late, 'is', 'are')} late. Mean of the graded part over the {len(scored)} with a score: {mean:.1f} / "
               f"{graded_max:g}. Scores are the gradebook's, as <code>nbgrader export</code> reports them.")
    body = alarm + (
        f"<p>{summary}</p>\n"
        f"<h2>Status</h2><table><tr><th>Status</th><th>Submissions</th></tr>{status_rows}</table>\n"
        f"<h2>Score distribution</h2><figure>{distribution}</figure>\n"
        f"<h2>Pass rate per test</h2><figure>{pass_rate}</figure>\n"
        f"<h2>Most common failure messages</h2><figure>{failure_chart}</figure>\n"
        f"<table><tr><th>Test</th><th>Message (numbers blanked)</th><th>Students</th></tr>"
        f"{failure_rows}</table>\n"
        "<h2>Needs your attention</h2>"
        + (f"<table><tr><th>Student</th><th>Status</th><th>What happened, what to do</th></tr>{attention}</table>"
           if attention else "<p>Nothing: every submission was graded normally.</p>") + "\n" + review)
    page.write_text(_page(f"Class report: {assignment.name}", body), encoding="utf-8", errors="backslashreplace")
    return page


def counted(n, noun, plural=None):
    """'1 submission', '2 submissions'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _verb(n, one, many):
    return one if n == 1 else many


def _attention(result):
    """The instructor's line for a submission that was not graded normally: what happened, what to do."""
    if result is None:
        return f"not graded yet: run `{coursedir.hint('grade')}`"
    text = result.reason
    if result.status in NOT_RUN:
        text += (". Grade it by hand in formgrader" + (" (done)" if not result.awaiting_manual_grade else "")
                 + ", or ask the student for a fresh copy and grade again")
    return text


# ---------------------------------------------------------------- terminal

def score_table(results, assignment, limit=40):
    """A plain-text table, one row per student, with the gradebook's scores ("*" marks a manual grade).
    Beyond `limit` rows only the ones needing attention."""
    names = labels(assignment)
    graded_max, optional_max = _parts(assignment)
    header = (["student", f"graded/{graded_max:g}", f"optional/{optional_max:g}", "late", "score"]
              + names + ["status"])
    chosen = sorted(results.items())
    hidden = 0
    if len(chosen) > limit:
        kept = [(s, r) for s, r in chosen if r is None or r.status != GRADED]
        hidden, chosen = len(chosen) - len(kept), kept
    rows = []
    for student, r in chosen:
        if r is None:
            rows.append([student, "-", "-", "", "-"] + ["-"] * len(names) + [PENDING])
            continue
        cells = {label_of(assignment, t): (f"{t.score:g}" + ("*" if t.manual else "")) if t.scored else "-"
                 for t in r.tests}
        status = r.status + (f": {r.reason}" if r.reason else "")
        if r.awaiting_manual_grade:
            status = "AWAITING MANUAL GRADE, " + status
        late = (f"-{r.late_penalty:g}" if r.late_penalty else "late") if (r.late or r.late_penalty) else ""
        rows.append([student, f"{r.part('graded'):g}", f"{r.part('optional'):g}", late,
                     "-" if r.awaiting_manual_grade else f"{r.score:g}"]
                    + [cells.get(n, "-") for n in names] + [status])
    rows = [[for_terminal(cell, one_line=True) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    if hidden:
        lines.append(f"... and {hidden} more students graded normally (see the grades CSV)")
    if any(t.manual for r in results.values() if r for t in r.tests):
        lines.append("* a score given by hand in formgrader")
    flags = review_lines(dict(results))
    if flags:
        lines += ["", "Review flags (what tampering uses, found in the code; they never change a score):"]
        lines += [f"  {for_terminal(line, one_line=True)}" for line in flags]
    loose = unconfined(dict(results))
    if loose:
        lines += ["", "!" * 100, UNCONFINED_WARNING.format(n=len(loose)), "!" * 100]
    return "\n".join(lines)


class Progress:
    """A one-line progress bar with rate and ETA; plain lines when the output is not a terminal."""

    def __init__(self, total, stream=sys.stderr, width=28):
        self.total, self.stream, self.width = total, stream, width
        self.done, self.started, self.last_line = 0, time.monotonic(), 0.0
        self.tty = stream.isatty()

    def update(self, student, status):
        self.done += 1
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        filled = int(self.width * self.done / self.total)
        text = (f"grading [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}  "
                f"{rate:.1f}/s  ETA {int(eta) // 60}:{int(eta) % 60:02d}  "
                + for_terminal(f"{student}: {status}", one_line=True))
        if self.tty:
            self.stream.write("\r" + text[:150].ljust(150))
        elif self.done == self.total or time.monotonic() - self.last_line >= 5 or status != GRADED:
            self.stream.write(text + "\n")
            self.last_line = time.monotonic()
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
