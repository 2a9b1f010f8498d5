"""The feedback page and the class report, rendered from their Jinja2 templates (grader/pages.py).

These build results directly, so that every status and every hostile string can be put on a page
without grading a notebook for each.
"""
import html
from html.parser import HTMLParser

import pytest

from conftest import rnn
from grader.core import model
from grader.core.model import GRADED, Result, STATUSES
from grader.grade import batch
from grader.report import pages

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'


@pytest.fixture(scope="module")
def assignment(graded_course):
    return batch.load_assignment(rnn(graded_course))


def result(assignment, student, status=GRADED, score=None, seconds=1.0, message="", **fields):
    """A result for `student`: every test at `score` (full marks when None)."""
    tests = [model.TestResult(c.grade_id, assignment.part_of(c.grade_id), c.points if score is None else score, c.points,
                        message=message, notebook=notebook) for notebook, c in assignment.tests()]
    return Result(student, status, reason=fields.pop("reason", ""), tests=tests, seconds=seconds,
                  graded_at="2026-11-30T10:00:00+00:00", **fields)


class Elements(HTMLParser):
    """Every element and attribute of a page, as a browser's parser sees them."""

    def __init__(self, page):
        super().__init__()
        self.tags, self.attributes = [], []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]


def test_student_text_never_becomes_markup_on_either_page(assignment, tmp_path):
    hostile = result(assignment, HOSTILE, score=0, message=HOSTILE, reason=HOSTILE, notes=[HOSTILE],
                     review=[HOSTILE], flags=[HOSTILE], late=True, timestamp=HOSTILE,
                     instructor_comments={f"{assignment.notebooks[0].name}/rnn_cell_forward": HOSTILE})
    feedback = pages.feedback_page(hostile, assignment)
    report = pages.write_class_report(tmp_path / "report.html", {HOSTILE: hostile}, assignment).read_text()
    for page, scripts in ((feedback, 0), (report, 1)):  # the report's one script is its own table sorter
        found = Elements(page)
        assert found.tags.count("script") == scripts and "img" not in found.tags
        assert "onerror" not in found.attributes
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text
    assert feedback.count("&lt;script&gt;") >= 4  # student, message, note, comment
    assert "<script>" not in report.split("<script>\n// Sort")[0]


def test_the_pages_are_the_templates_with_autoescape_on():
    environment = pages._templates()
    assert environment.autoescape is True
    assert {"base.html.j2", "feedback.html.j2", "class_report.html.j2"} <= set(environment.list_templates())


@pytest.mark.parametrize("status", [s for s in STATUSES if s != GRADED])
def test_every_status_but_graded_says_why_on_the_students_page(assignment, status):
    """In the student's words: the page never shows the status's name or the instructor's reason alone."""
    page = pages.feedback_page(result(assignment, "kim", status, score=0, reason="cell timeout (5 s) in x"), assignment)
    why = pages.student_status(result(assignment, "kim", status), assignment)
    assert why and why.split(":")[0].split(".")[0] in html.unescape(page)
    assert "Your" in why or "your" in why


def test_a_plainly_graded_page_has_no_status_note(assignment):
    assert pages.student_status(result(assignment, "kim"), assignment) is None
    assert 'class="note"' not in pages.feedback_page(result(assignment, "kim"), assignment)


def test_the_report_lists_the_lowest_and_the_slowest_and_every_student(assignment, tmp_path):
    results = {f"s{i:02d}": result(assignment, f"s{i:02d}", score=i % 6, seconds=float(i)) for i in range(30)}
    results["waiting"] = result(assignment, "waiting", "invalid notebook", seconds=0.0)
    for t in results["waiting"].tests:
        t.scored = False
    results["pending"] = None
    page = pages.write_class_report(tmp_path / "report.html", results, assignment).read_text()
    help_section = page.split('id="help"')[1].split("Needs your attention")[0]
    lowest, slowest = help_section.split("Slowest submissions")
    lowest_students = [s for s in results if f"<td>{s}</td>" in lowest]
    assert len(lowest_students) == pages.LISTED and "waiting" not in lowest_students  # no score: not "low"
    expected = sorted((r.part("graded"), s) for s, r in results.items() if s.startswith("s"))[:pages.LISTED]
    assert sorted(lowest_students) == sorted(s for _, s in expected)  # s00, s06, ... (0 points), s01, s07, ...
    assert lowest.index("<td>s00</td>") < lowest.index("<td>s06</td>") < lowest.index("<td>s01</td>")
    assert [s for s in results if f"<td>{s}</td>" in slowest] == [f"s{i}" for i in range(20, 30)]
    assert slowest.index("<td>s29</td>") < slowest.index("<td>s20</td>")  # slowest first
    table = page.split('id="student-table"')[1].split("</table>")[0]
    assert all(f"<td>{s}</td>" in table for s in results)
    # one meaning for "not scored yet": blank numbers, the status says why
    waiting_row = table.split("<td>waiting</td>")[1].split("</tr>")[0]
    assert 'class="num"></td>' in waiting_row and "awaiting a manual grade" in waiting_row


def _two_notebooks():
    """An assignment of two notebooks, no optional part: a test of 3 points, and an answer of 2 graded by hand in
    the second, which has no test."""
    test = model.MasterCell("test_f", "code", "assert f() == 1", True, "x", points=3.0)
    answer = model.MasterCell("essay", "markdown", "", False, "y", points=2.0, solution=True)
    return model.AssignmentSpec((model.NotebookTask("hw", "one", (test,), ()),
                               model.NotebookTask("hw", "two", (answer,), ())))


def test_each_notebooks_page_names_it_shows_its_own_tests_and_comments_and_the_total_once():
    assignment = _two_notebooks()
    done = Result("ann", GRADED, tests=[model.TestResult("test_f", "graded", 1.0, 3.0, "AssertionError: f",
                                                           notebook="one")],
                  graded_at="2026-11-30T10:00:00+00:00",
                  instructor_comments={"one/test_f": "look at the loop", "two/essay": "well argued"})
    one, two = pages.feedback_page(done, assignment, "one"), pages.feedback_page(done, assignment, "two")
    assert "notebook <b>one.ipynb</b>" in one and "Feedback: hw, one.ipynb" in one
    assert "look at the loop" in one and "well argued" not in one
    assert "well argued" in two and "look at the loop" not in two
    assert "two.ipynb has no automatic tests" in two and "<th>Test</th>" not in two
    for page in (one, two):
        assert "Optional part" not in page, "no optional part in this assignment"
        assert page.count("Assignment total") == 1


def test_the_class_report_draws_each_existing_part_on_its_own_scale(tmp_path):
    from grader.report import charts
    assignment = _two_notebooks()
    done = {s: Result(s, GRADED, tests=[model.TestResult("test_f", "graded", score, 3.0, notebook="one")],
                      graded_at="2026-11-30T10:00:00+00:00") for s, score in (("a", 0.0), ("b", 1.5), ("c", 3.0))}
    report = pages.write_class_report(tmp_path / "report.html", done, assignment).read_text()
    assert "Graded part (out of 5)" in report and "Optional part (out of" not in report, "the answer counts"
    assert charts.bin_width(3) == 0.5 and charts.bin_width(120) == 20
    assert "Reasons and review flags" in report


def test_a_notebook_waiting_for_a_hand_grade_shows_no_score_for_its_parts(assignment):
    waiting = result(assignment, "unreadable", status=model.INVALID, score=0.0, reason="not valid JSON")
    for test in waiting.tests:
        test.scored = False
    page = pages.feedback_page(waiting, assignment)
    assert "not yet scored / 100" in page and "not yet scored / 20" in page
    assert "0 / 100" not in page and "0 / 20" not in page
    assert "100 / 100" in pages.feedback_page(result(assignment, "done"), assignment)
