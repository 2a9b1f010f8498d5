"""The kit against stock `nbgrader autograde`, cell by cell, on notebooks that do what real courses' notebooks do.

`habits` (tests/small_assignments.py) holds, in a notebook of our own, each habit of real courses that once
broke the kit: a magic beside the imports, a master cell that fails wherever it runs, numpy scalars, dicts with
integer keys, sets, complex numbers, big integers, NaN, Fractions, widgets and displays of every kind, an
`### AUTOTEST` line, a partial credit, thousands of empty cells, a hand-graded answer. nbgrader's user guide
course (ps1, ps1_autotest, and the two real submissions it ships) is graded the same way. The corpus of real
courses (tools/conformance/) is measured by `make conformance`, not here: its notebooks are not ours to ship.
"""
import json

import nbformat
import pytest

from grader.core import model
from grader_eval import conformance
from small_assignments import add_habits


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("conformance")
    add_habits(scratch / "courses" / "habits")
    rows = conformance.main([scratch / "courses"], scratch / "work", docs=scratch / "docs",
                            with_nbgrader=("nbgrader-user-guide",), say=lambda text: None)
    return {row.assignment: row for row in rows}, scratch


def test_every_cell_of_every_student_is_graded_as_stock_grades_it(compared):
    rows, _ = compared
    assert set(rows) == {"habits", "ps1", "ps1_autotest"}
    for name, row in rows.items():
        assert row.cells > 0 and row.identical == row.cells, (name, row.differences, row.note)
        assert row.agrees or name == "ps1_autotest", (name, row.stock)


def test_no_honest_notebook_is_suspected_and_nothing_is_left_ungraded(compared):
    rows, _ = compared
    for name, row in rows.items():
        statuses = set(row.kit)
        assert not statuses & {model.TAMPERING, model.ERROR, model.INVALID, "not graded"}, (name, row.kit)


def test_only_the_tests_that_read_what_cannot_travel_are_judged_inside(compared):
    """habits: the test of the cell that fails everywhere (it reads `axis`), the widget's test (a widget is no
    plain data), and the test that reads what an earlier test's hidden part defined, with that earlier test
    (both run whole in the student's process, as stock runs them). Everything else, numpy scalars and
    Fractions included, is replayed outside the sandbox."""
    rows, _ = compared
    assert rows["habits"].judged_inside == 4, rows["habits"].kit_notes
    assert rows["ps1"].judged_inside == 0


def test_the_graded_notebook_keeps_every_kind_of_output_and_nothing_live(compared):
    _, scratch = compared
    graded = nbformat.read(str(scratch / "work" / "runs" / "habits" / "kit" / "autograded" / "master" / "habits" /
                               "habits.ipynb"), as_version=4)
    cell = next(c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "widgets")
    kinds = [sorted(o.get("data", {})) for o in cell.outputs]
    texts = [o.get("text", "") for o in cell.outputs if o.output_type == "stream"]
    data = {k: v for o in cell.outputs for k, v in o.get("data", {}).items()}
    assert "application/vnd.jupyter.widget-view+json" in data, kinds
    assert data["text/html"] == "<b>bold</b>" and "text/markdown" in data and data["text/latex"] == "$x^2$"
    assert data["application/json"] == {"a": 1}
    assert texts == ["kept\n"], "clear_output(wait=True) cleared what came before, as Jupyter does"
    assert data["text/plain"] == "'second'", "the display was updated in place"
    image = next(c for c in graded.cells if c.source.startswith("from PIL import Image"))
    assert image.outputs[0]["data"]["image/png"].startswith("iVBOR"), "PNG bytes kept in base64, as a kernel sends them"


def test_long_outputs_are_cut_as_stock_autograde_cuts_them():
    """The kit's copy of LimitOutput's rule (grading._limit_output) against nbgrader's own, at and around its limits:
    stream text over one output or many, stderr beside stdout, tracebacks of every length."""
    import copy

    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
    from nbgrader.preprocessors import LimitOutput

    from grader.judge import grading

    def stream(lines, name="stdout"):
        return new_output("stream", name=name, text="\n".join(f"line {i}" for i in range(lines)))

    def error(lines):
        return new_output("error", ename="E", evalue="e", traceback=[f"frame {i}" for i in range(lines)])

    cells = [new_code_cell(outputs=outputs) for outputs in (
        [stream(10)], [stream(999)], [stream(1000)], [stream(1001)], [stream(5000)],
        [stream(600), stream(400, "stderr"), stream(3)], [stream(600), stream(401), stream(2)],
        [stream(1000), new_output("display_data", data={"text/plain": "kept"}), stream(5)],
        [error(99)], [error(100)], [error(101)], [error(4000)], [stream(2000), error(300)])]
    nb = new_notebook(cells=[*cells, new_markdown_cell("text")])
    theirs, ours = copy.deepcopy(nb), copy.deepcopy(nb)
    limiter = LimitOutput()
    for cell in theirs.cells:
        limiter.preprocess_cell(cell, {}, 0)
    grading._limit_output(ours)
    assert ours == theirs
    assert (grading.OUTPUT_LINES, grading.TRACEBACK_LINES) == (limiter.max_lines, limiter.max_traceback)


def test_the_table_is_written_as_markdown_and_json(compared):
    _, scratch = compared
    table = (scratch / "docs" / "conformance.md").read_text()
    assert "| habits | habits | 2 |" in table
    rows = json.loads((scratch / "docs" / "conformance.json").read_text())
    assert {r["assignment"] for r in rows} == {"habits", "ps1", "ps1_autotest"}
