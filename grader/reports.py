"""What a batch leaves behind for people: the grades CSV, feedback pages, the class
report with its plots, the summary table, and the progress bar while it runs.

Feedback pages show each test's result and message, never the hidden test code or
a traceback: the messages come from `grading._message`, which drops any line of
hidden test code.
"""
import csv
import html
import re
import sys
import time
from collections import Counter
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .grading import ERROR, GRADED, INVALID, STATUSES, TAMPERING

GRADES_CSV = "grades.csv"
REPORT_HTML = "class_report.html"
REPORT_FILES = "class_report_files"
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
img { max-width: 100%; border: 1px solid #e0e4ea; margin: .5em 0; }
"""


def _page(title, body):
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _parts(assignment):
    """(graded max, optional max) from the test cells."""
    tests = assignment.tests()
    graded = sum(c.points for c in tests if assignment.part_of(c.grade_id) == "graded")
    return graded, sum(c.points for c in tests) - graded


# ---------------------------------------------------------------- feedback

def feedback_page(result, assignment):
    graded_max, optional_max = _parts(assignment)
    rows = []
    for test in result.tests:
        verdict = '<span class="pass">passed</span>' if test.passed else '<span class="fail">not passed</span>'
        message = "" if test.passed else html.escape(test.message)
        part = "optional" if test.part == "optional" else ""
        rows.append(f"<tr><td><code>{html.escape(test.function)}</code> {part}</td><td>{verdict}</td>"
                    f"<td class=\"num\">{test.score:g} / {test.max_score:g}</td><td><pre>{message}</pre></td></tr>")
    note = ""
    if result.status == TAMPERING:
        # The details (what differed, the review flags) are for the instructor's report only.
        note = ("<p class=\"note\">Some tests passed when your notebook ran, but the grader's own check of the "
                "very same outputs did not. Those tests score 0 for now, and your instructor will look at "
                "your notebook.</p>")
    elif result.status != GRADED:
        note = (f"<p class=\"note\">Status: <b>{html.escape(result.status)}</b>. "
                f"{html.escape(result.reason)}. Your instructor sees this note too.</p>")
    body = (f"<p>Student <b>{html.escape(result.student)}</b>, assignment <b>{html.escape(assignment.name)}</b>, "
            f"graded {html.escape(result.graded_at)}.</p>{note}\n"
            f"<table><tr><th>Part</th><th>Score</th></tr>"
            f"<tr><td>Graded functions</td><td class=\"num\">{result.part('graded'):g} / {graded_max:g}</td></tr>"
            f"<tr><td>Optional backward pass (scored separately)</td>"
            f"<td class=\"num\">{result.part('optional'):g} / {optional_max:g}</td></tr></table>\n"
            "<table><tr><th>Function</th><th>Result</th><th>Points</th><th>What went wrong</th></tr>\n"
            + "\n".join(rows) + "</table>\n"
            "<p>Each test also runs your function on inputs you have not seen. A message here tells you "
            "what to look at; the visible checks in your notebook tell you more.</p>")
    return _page(f"Feedback: {assignment.name}", body)


# ---------------------------------------------------------------- grades CSV

def functions(assignment):
    return [c.grade_id.removeprefix("test_") for c in assignment.tests()]


def write_grades_csv(path, results, assignment, lms_ids):
    """One row per submission. Students not graded yet, and notebooks that could not be run, get no
    numbers (the gradebook leaves those for manual grading), only their status and reason."""
    names = functions(assignment)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["student", "lms_id", "status", "total", "graded", "optional"] + names
                     + ["reason", "graded_at", "review_flags", "confinement"])
        for student, result in sorted(results.items()):
            if result is None:
                out.writerow([student, lms_ids.get(student, ""), PENDING, "", "", ""] + [""] * len(names)
                             + ["run `python -m grader grade` again to grade it", "", "", ""])
                continue
            extra = [result.graded_at, "; ".join(result.review), confinement(result)]
            if result.status in (INVALID, ERROR):  # nothing ran: no number, as in the gradebook
                out.writerow([student, lms_ids.get(student, ""), result.status, "", "", ""] + [""] * len(names)
                             + [result.reason] + extra)
                continue
            scores = {t.function: t.score for t in result.tests}
            out.writerow([student, lms_ids.get(student, ""), result.status, f"{result.total:g}",
                          f"{result.part('graded'):g}", f"{result.part('optional'):g}"]
                         + [f"{scores.get(n, 0):g}" for n in names] + [result.reason] + extra)
    return path


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

def _save(fig, path):
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, metadata={"Software": None})


def _normalise(message):
    """Failure messages with their numbers blanked, so that the same mistake groups together."""
    first = message.splitlines()[0] if message else "(no message)"
    first = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", first)
    return first if len(first) <= 110 else first[:107] + "..."


def write_class_report(folder, results, assignment):
    """class_report.html and its plots in `folder`; returns the page's path."""
    folder = Path(folder)
    files = folder / REPORT_FILES
    files.mkdir(parents=True, exist_ok=True)
    graded = {s: r for s, r in results.items() if r is not None and r.status not in (INVALID, ERROR)}
    names = functions(assignment)
    graded_max, optional_max = _parts(assignment)

    fig = Figure(figsize=(8, 3.4))
    left, right = fig.subplots(1, 2)
    left.hist([r.part("graded") for r in graded.values()], bins=range(0, int(graded_max) + 10, 5),
              color="#3b6ea5", edgecolor="white")
    left.set(title=f"Graded part (out of {graded_max:g})", xlabel="points", ylabel="students")
    right.hist([r.part("optional") for r in graded.values()], bins=range(0, int(optional_max) + 2, 1),
               color="#8a63b3", edgecolor="white")
    right.set(title=f"Optional part (out of {optional_max:g})", xlabel="points")
    fig.tight_layout()
    _save(fig, files / "score_distribution.png")

    fig = Figure(figsize=(8, 3.4))
    ax = fig.subplots()
    rates = [100 * sum(t.passed for r in graded.values() for t in r.tests if t.function == n) / max(len(graded), 1)
             for n in names]
    colors = ["#3b6ea5" if assignment.part_of(f"test_{n}") == "graded" else "#8a63b3" for n in names]
    bars = ax.bar(range(len(names)), rates, color=colors)
    ax.bar_label(bars, fmt="%.0f%%", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set(ylim=(0, 110), ylabel="% of students passing", title="Pass rate per function (purple: optional)")
    fig.tight_layout()
    _save(fig, files / "pass_rate.png")

    failures = Counter((t.function, _normalise(t.message)) for r in graded.values() for t in r.tests
                       if not t.passed)
    common = failures.most_common(10)
    fig = Figure(figsize=(8, 0.45 * max(len(common), 2) + 1.2))
    ax = fig.subplots()
    labels = [f"{fn}: {msg[:60]}" for (fn, msg), _ in common][::-1]
    ax.barh(range(len(common)), [n for _, n in common][::-1], color="#b3261e")
    ax.set_yticks(range(len(common)), labels, fontsize=7)
    ax.set(xlabel="students", title="Most common failure messages")
    fig.tight_layout()
    _save(fig, files / "common_failures.png")

    statuses = Counter(r.status if r else PENDING for r in results.values())
    status_rows = "".join(f"<tr><td>{html.escape(s)}</td><td class=\"num\">{statuses[s]}</td></tr>"
                          for s in STATUSES + [PENDING] if statuses[s])
    failure_rows = "".join(f"<tr><td><code>{html.escape(fn)}</code></td><td>{html.escape(msg)}</td>"
                           f"<td class=\"num\">{n}</td></tr>" for (fn, msg), n in common)
    attention = "".join(f"<tr><td>{html.escape(s)}</td><td>{html.escape(r.status if r else PENDING)}</td>"
                        f"<td>{html.escape(r.reason if r else 'run the grader again')}</td></tr>"
                        for s, r in sorted(results.items()) if r is None or r.status != GRADED)
    mean = sum(r.part("graded") for r in graded.values()) / max(len(graded), 1)
    loose = unconfined(results)
    alarm = (f"<p class=\"alarm\">{html.escape(UNCONFINED_WARNING.format(n=len(loose)))} "
             f"({html.escape(', '.join(loose))})</p>\n" if loose else "")
    flagged = "".join(f"<tr><td>{html.escape(s)}</td><td>{'<br>'.join(html.escape(f) for f in r.review)}</td></tr>"
                      for s, r in sorted(results.items()) if r is not None and r.review)
    review = ("<h2>Review flags</h2><p>What a scan of the code found that tampering uses. Flags never change a "
              "score; they say where to read.</p>"
              + (f"<table><tr><th>Student</th><th>Found</th></tr>{flagged}</table>" if flagged
                 else "<p>None.</p>"))
    body = alarm + (f"<p>{len(results)} submissions, {len(graded)} graded. Mean of the graded part: "
            f"{mean:.1f} / {graded_max:g}.</p>\n"
            f"<h2>Status</h2><table><tr><th>Status</th><th>Students</th></tr>{status_rows}</table>\n"
            f"<h2>Score distribution</h2><img src=\"{REPORT_FILES}/score_distribution.png\" "
            "alt=\"Histograms of the graded and optional scores\">\n"
            f"<h2>Pass rate per function</h2><img src=\"{REPORT_FILES}/pass_rate.png\" "
            "alt=\"Bar chart of the share of students passing each test\">\n"
            f"<h2>Most common failure messages</h2><img src=\"{REPORT_FILES}/common_failures.png\" "
            "alt=\"Bar chart of the most frequent failure messages\">\n"
            f"<table><tr><th>Function</th><th>Message (numbers blanked)</th><th>Students</th></tr>"
            f"{failure_rows}</table>\n"
            "<h2>Needs your attention</h2>"
            + (f"<table><tr><th>Student</th><th>Status</th><th>Reason</th></tr>{attention}</table>"
               if attention else "<p>Nothing: every submission was graded normally.</p>") + "\n" + review)
    page = folder / REPORT_HTML
    page.write_text(_page(f"Class report: {assignment.name}", body))
    return page


# ---------------------------------------------------------------- terminal

SHORT = {"rnn_cell_forward": "rnn_cell", "rnn_forward": "rnn", "lstm_cell_forward": "lstm_cell",
         "lstm_forward": "lstm", "rnn_cell_backward": "rnn_cell_bw", "rnn_backward": "rnn_bw",
         "lstm_cell_backward": "lstm_cell_bw", "lstm_backward": "lstm_bw"}


def score_table(results, assignment, limit=40):
    """A plain-text table, one row per student. Beyond `limit` rows only the ones needing attention."""
    names = functions(assignment)
    graded_max, optional_max = _parts(assignment)
    header = (["student", f"graded/{graded_max:g}", f"optional/{optional_max:g}"]
              + [SHORT.get(n, n) for n in names] + ["status"])
    chosen = sorted(results.items())
    hidden = 0
    if len(chosen) > limit:
        kept = [(s, r) for s, r in chosen if r is None or r.status != GRADED]
        hidden, chosen = len(chosen) - len(kept), kept
    rows = []
    for student, r in chosen:
        if r is None or r.status in (INVALID, ERROR):
            status = PENDING if r is None else f"{r.status}: {r.reason}"
            rows.append([student, "-", "-"] + ["-"] * len(names) + [status])
            continue
        scores = {t.function: t.score for t in r.tests}
        status = r.status + (f": {r.reason}" if r.reason else "")
        rows.append([student, f"{r.part('graded'):g}", f"{r.part('optional'):g}"]
                    + [f"{scores.get(n, 0):g}" for n in names] + [status])
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    if hidden:
        lines.append(f"... and {hidden} more students graded normally (see the grades CSV)")
    flags = review_lines(dict(results))
    if flags:
        lines += ["", "Review flags (what tampering uses, found in the code; they never change a score):"]
        lines += [f"  {line}" for line in flags]
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
                f"{rate:.1f}/s  ETA {int(eta) // 60}:{int(eta) % 60:02d}  {student}: {status}")
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
