"""Does the release agree with the master, and is it safe to hand out?"""
import re
import sqlite3
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.validator import Validator

from conftest import make_course_copy
from grader.core import notebook
from grader.course import release
from grader_eval import stock
import rnn_course


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_regenerating_the_release_changes_nothing(tmp_path):
    """Does nbgrader generate_assignment reproduce the committed release byte for byte?"""
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    fresh = _files(course_dir / "release" / rnn_course.ASSIGNMENT)
    committed = _files(rnn_course.RELEASE_DIR)
    assert sorted(fresh) == sorted(committed), "the release holds other files than a fresh one"
    changed = [str(name) for name in fresh if fresh[name] != committed[name]]
    assert not changed, f"release/ is out of date in {changed}: run `make release` and commit"
    # The gradebook it made carries the schema version nbgrader's own `alembic heads` prints (the kit reads it
    # in process: grader/coursedir.py), so stock nbgrader and `nbgrader db upgrade` take it as their own.
    with sqlite3.connect(course_dir / "gradebook.db") as db:
        [(stamped,)] = db.execute("select version_num from alembic_version").fetchall()
    heads = subprocess.run([sys.executable, "-c", "from nbgrader.api import get_alembic_version as v; print(v())"],
                           env=stock.environment(), capture_output=True, text=True, check=True, timeout=120)
    assert stamped == heads.stdout.strip() != ""


def _region_only_lines(begin, end):
    """Lines inside the master's begin/end regions that stand nowhere else in the master."""
    inside, outside = set(), set()
    pattern = re.compile(rf"{begin}\n(.*?){end}\n?", re.S)
    for cell in notebook.read(rnn_course.MASTER_NOTEBOOK).cells:
        for block in pattern.findall(cell.source):
            inside |= {line.strip() for line in block.splitlines()
                       if len(line.strip()) > 20 and not line.strip().startswith("#")}
        outside |= {line.strip() for line in pattern.sub("", cell.source).splitlines()}
    return inside - outside


def _solution_only_lines():
    return _region_only_lines("### BEGIN SOLUTION", "### END SOLUTION")


def test_release_holds_no_solution_and_no_hidden_test():
    """Are all solution lines and hidden-test lines gone from every file of the release?"""
    solution_lines = _solution_only_lines()
    hidden_lines = _region_only_lines("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
    assert solution_lines and hidden_lines
    for path in rnn_course.RELEASE_DIR.rglob("*"):
        if path.suffix not in (".ipynb", ".py"):
            continue
        text = path.read_text()
        sources = ("\n".join(c.source for c in nbformat.reads(text, 4).cells) if path.suffix == ".ipynb" else text)
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in sources, f"{path.name} contains {marker}"
        present = {line.strip() for line in sources.splitlines()}
        assert not (solution_lines & present), f"{path.name} holds solution code: {solution_lines & present}"
        assert not (hidden_lines & present), f"{path.name} holds hidden tests: {hidden_lines & present}"


def test_master_passes_every_test():
    """nbgrader validate on the master: does every test cell pass?"""
    assert Validator().validate(str(rnn_course.MASTER_NOTEBOOK)) == {}


def test_release_passes_no_test():
    """nbgrader validate --invert on the release: does every test cell fail before any work is done?"""
    assert Validator(invert=True).validate(str(rnn_course.RELEASE_NOTEBOOK)) == {}


def _numbers_and_words(text):
    return re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?|\S+", text)


def test_expected_output_cells_show_what_the_master_prints():
    """Does each 'Expected output' cell show exactly what the test above it prints for a correct solution?"""
    nb = notebook.read(rnn_course.MASTER_NOTEBOOK)
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(rnn_course.SOURCE_DIR)}}).execute()
    printed = {notebook.nbgrader_meta(c).get("grade_id", c.id): "".join(o.get("text", "") for o in c.outputs
                                                              if o.get("name") == "stdout")
               for c in nb.cells if c.cell_type == "code"}
    stderr = [notebook.nbgrader_meta(c).get("grade_id", c.id) for c in nb.cells if c.cell_type == "code"
              and any(o.get("name") == "stderr" or o.get("output_type") == "error" for o in c.outputs)]
    assert not stderr, f"cells wrote to stderr or failed on the master: {stderr}"
    for cell in nb.cells:
        grade_id = notebook.nbgrader_meta(cell).get("grade_id", "")
        if not grade_id.startswith("expected_"):
            continue
        shown = re.search(r"```\n(.*)\n```", cell.source, re.S).group(1)
        actual = printed["test_" + grade_id.removeprefix("expected_")]
        want, got = _numbers_and_words(shown), _numbers_and_words(actual)
        assert len(want) == len(got), grade_id
        for w, g in zip(want, got):
            if re.fullmatch(r"-?\d+\.\d+(?:e[-+]?\d+)?", w):
                assert float(g) == pytest.approx(float(w), rel=1e-9, abs=1e-12), grade_id
            else:
                assert w == g, grade_id


def test_helper_modules_hold_no_solution():
    """Are the files copied verbatim into the release (rnn_utils.py, rnn_checks.py) free of solution code?"""
    solution_lines = _solution_only_lines()
    for name in ("rnn_utils.py", "rnn_checks.py"):
        lines = {line.strip() for line in (rnn_course.SOURCE_DIR / name).read_text().splitlines()}
        assert not (solution_lines & lines), name


def test_every_test_cell_is_locked_and_scored_as_documented():
    """Do the four forward tests carry 25 points each and the four backward tests 5 each?"""
    points = {notebook.nbgrader_meta(c)["grade_id"]: notebook.nbgrader_meta(c)["points"]
              for c in notebook.read(rnn_course.MASTER_NOTEBOOK).cells if notebook.nbgrader_meta(c).get("grade")}
    assert points == {**{f"test_{f}": 25 for f in rnn_course.GRADED_FUNCTIONS},
                      **{f"test_{f}": 5 for f in rnn_course.OPTIONAL_FUNCTIONS}}
    for cell in notebook.read(rnn_course.MASTER_NOTEBOOK).cells:
        meta = notebook.nbgrader_meta(cell)
        if meta:  # cells without nbgrader metadata are the student's to edit: the experiments
            assert meta.get("locked") != meta.get("solution"), f"{meta['grade_id']}: solution cells only are editable"


def test_validate_on_a_release_without_the_optional_part_says_it_is_optional(tmp_path):
    """A student who does parts 1 and 2 and plays with the experiment cell, as the text invites:
    `nbgrader validate` names the four optional functions as optional, and says nothing about
    changed cells."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    from rnn_course import samples
    folder = tmp_path / "student"
    shutil.copytree(rnn_course.RELEASE_DIR, folder)
    correct = samples.master_solutions()
    nb = samples.fill({name: correct[name] for name in rnn_course.GRADED_FUNCTIONS})
    experiment = [c for c in nb.cells if "FORGET_BIAS = 3.0" in c.source]
    assert len(experiment) == 1 and not notebook.nbgrader_meta(experiment[0]), "the experiment cell is editable"
    experiment[0].source = experiment[0].source.replace("FORGET_BIAS = 3.0", "FORGET_BIAS = 0.0")
    nbformat.write(nb, str(folder / f"{rnn_course.NOTEBOOK}.ipynb"))
    nbgrader = Path(sys.executable).with_name("nbgrader")
    out = subprocess.run([str(nbgrader), "validate", f"{rnn_course.NOTEBOOK}.ipynb"], cwd=folder,
                         capture_output=True, text=True, timeout=600).stdout
    assert "HAVE CHANGED" not in out and "has changed" not in out
    assert "VALIDATION FAILED ON 4 CELL(S)" in out
    for name in rnn_course.OPTIONAL_FUNCTIONS:
        assert f"{name} is not written yet." in out and f"{name} is OPTIONAL: leaving it out scores 0" in out
    assert out.count("takes nothing from the 100 points of parts 1 and 2.") == 4


def test_a_failing_check_shows_its_message_and_the_students_lines_not_the_checking_code(tmp_path):
    """In a real Jupyter kernel and in `nbgrader validate`: a failing check's traceback is the student's
    cell and the message; an error in the student's own function shows that function's line. Neither
    shows the frames of rnn_checks.py or contextlib."""
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from nbclient import NotebookClient
    from rnn_course import samples
    folder = tmp_path / "student"
    shutil.copytree(rnn_course.RELEASE_DIR, folder)
    correct = samples.master_solutions()
    answers = {name: correct[name] for name in rnn_course.GRADED_FUNCTIONS}
    answers["rnn_cell_forward"] = samples.mutate(answers["rnn_cell_forward"], "np.tanh(", "sigmoid(")
    answers["lstm_forward"] = samples.mutate(answers["lstm_forward"], "range(T_x)", "range(T_x + 1)")  # IndexError
    nb = samples.fill(answers)
    path = folder / f"{rnn_course.NOTEBOOK}.ipynb"
    nbformat.write(nb, str(path))

    NotebookClient(nb, timeout=300, allow_errors=True, resources={"metadata": {"path": str(folder)}}).execute()
    errors = {cell.metadata.get("nbgrader", {}).get("grade_id"): "\n".join(output.traceback)
              for cell in nb.cells for output in cell.get("outputs", []) if output.output_type == "error"}
    errors = {grade_id: re.sub(r"\x1b\[[0-9;]*m", "", text) for grade_id, text in errors.items()}
    shown = errors["test_rnn_cell_forward"]
    assert "is sigmoid used where tanh belongs?" in shown and "check_rnn_cell_forward(result, case)" in shown
    own = errors["test_lstm_forward"]
    assert "IndexError" in own and "range(T_x + 1)" in own  # the student's own line, where it went wrong
    for text in (shown, own):
        assert "rnn_checks.py" not in text and "contextlib" not in text, text

    nbgrader = Path(sys.executable).with_name("nbgrader")
    out = subprocess.run([str(nbgrader), "validate", path.name], cwd=folder, capture_output=True, text=True,
                         timeout=600).stdout
    assert "is sigmoid used where tanh belongs?" in out and "IndexError" in out
    assert "rnn_checks.py" not in out and "contextlib" not in out, out
