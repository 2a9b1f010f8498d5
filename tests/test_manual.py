"""Hand grading without a browser: `manual-grades export` and `import`, through nbgrader's own gradebook."""
import csv
import shutil

import pytest

from conftest import ROOT, kit
from grader.course import assignments, coursedir, solutions
from small_assignments import SECOND, add_warmup


def hand_scores(course_dir):
    """student -> {(notebook, cell): (score, waiting?)} as the gradebook holds them (formgrader's view)."""
    from nbgrader.api import Gradebook
    course = coursedir.course_directory(course_dir)
    with Gradebook(course.db_url, course.course_id) as gb:
        return {s.student_id: {(nb.name, g.name): (g.score, g.needs_manual_grade) for nb in s.notebooks
                               for g in nb.grades} for s in gb.find_assignment("warmup").submissions}


def kit_row(course_dir, student):
    with open(course_dir / "autograded" / "warmup_grades.csv", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["student"] == student)


def stock_total(course_dir, student):
    from grader_eval import stock
    return next(row for name, row in stock.export(course_dir).items() if name == student)["score"]


@pytest.fixture(scope="module")
def warmup(tmp_path_factory):
    """warmup (two notebooks, a Markdown answer graded by hand) with two students who answered it, graded."""
    course_dir = tmp_path_factory.mktemp("manual") / "course"
    add_warmup(course_dir)
    shutil.copy(ROOT / "nbgrader_config.py", course_dir)
    assert kit(course_dir, "release", "warmup").returncode == 0
    layout = assignments.find(course_dir, "warmup")
    for student in ("ann", "ben"):
        for name in layout.notebooks:
            filled = solutions.fill(solutions.master_solutions(layout.master(name)), layout.release(name))
            for cell in filled.cells:  # the answer graded by hand, written
                if cell.metadata.get("nbgrader", {}).get("grade_id") == "why":
                    cell.source = f"{student}: the two minus signs cancel."
            solutions.write(filled, course_dir, student, "warmup", name)
    graded = kit(course_dir, "grade", "warmup")
    assert graded.returncode in (0, 1), graded.stderr[-3000:]
    return course_dir


def test_export_lists_what_waits_and_a_bad_file_changes_nothing_then_a_good_one_is_formgraders_grade(warmup,
                                                                                                   tmp_path):
    waiting = tmp_path / "waiting.csv"
    done = kit(warmup, "manual-grades", "export", str(waiting), "--assignment", "warmup")
    assert done.returncode == 0, done.stderr
    with open(waiting, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["student"], r["notebook"], r["cell"], r["max_score"]) for r in rows] == [
        ("ann", "warmup", "why", "2"), ("ben", "warmup", "why", "2")]
    assert rows[0]["answer"] == "ann: the two minus signs cancel.", "what the student wrote, to read"
    before = hand_scores(warmup)
    assert before["ann"][("warmup", "why")] == (0, True), "waiting for a person"
    row = kit_row(warmup, "ann")
    assert row["score"] == "" and "awaiting a manual grade: 2 points" in row["status"], "no number while it waits"
    assert row["max_score"] == "12", "every point of the gradebook: 10 in tests, 2 in the answer"

    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["student", "notebook", "cell", "score", "max_score", "comment"])
        out.writerow(["ann", "warmup", "why", "1.5", "2", "clear"])     # good
        out.writerow(["ann", "warmup", "why", "3", "2", ""])            # over the cell's points
        out.writerow(["zed", "warmup", "why", "1", "2", ""])            # no such student
        out.writerow(["ben", "warmup", "nosuch", "1", "2", ""])         # no such cell
        out.writerow(["ben", "warmup", "why", "nan", "2", ""])          # not a number
        out.writerow(["ben", SECOND, "why", "1", "2", ""])              # not in that notebook
    refused = kit(warmup, "manual-grades", "import", str(bad), "--assignment", "warmup")
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.startswith("error: line")]
    assert [line.split(" (")[0] for line in lines] == [f"error: line {n}" for n in (3, 4, 5, 6, 7)], refused.stderr
    assert "Nothing was written" in refused.stderr
    assert hand_scores(warmup) == before, "one bad line: nothing written"

    good = tmp_path / "good.csv"
    rows[0]["score"], rows[0]["comment"] = "1.5", "clear, but say why the signs cancel"
    rows[1]["score"] = "2"
    with open(good, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    taken = kit(warmup, "manual-grades", "import", str(good), "--assignment", "warmup")
    assert taken.returncode in (0, 1), taken.stderr
    assert "Wrote 2 scores and 1 comment" in taken.stdout and "backed up first" in taken.stdout
    after = hand_scores(warmup)
    assert after["ann"][("warmup", "why")] == (1.5, False) and after["ben"][("warmup", "why")] == (2, False)
    empty = tmp_path / "left.csv"
    done = kit(warmup, "manual-grades", "export", str(empty), "--assignment", "warmup")
    assert done.returncode == 0 and "header only: no cell waiting" in done.stdout and "Fill in" not in done.stdout
    assert len(empty.read_text().splitlines()) == 1, "nothing waits any more"
    every = tmp_path / "every.csv"
    assert kit(warmup, "manual-grades", "export", str(every), "--assignment", "warmup", "--all").returncode == 0
    with open(every, newline="") as f:
        assert {(r["student"], r["score"]) for r in csv.DictReader(f)} == {("ann", "1.5"), ("ben", "2")}
    page = (warmup / "feedback" / "ann" / "warmup" / "warmup.html").read_text()
    assert "clear, but say why the signs cancel" in page, "published at once"
    assert "Answers your instructor grades" in page and "1.5 / 2" in page
    row = kit_row(warmup, "ann")
    assert row["status"] == "graded" and row["score"] == "11.5", "the hand grade counts in the kit's CSV"
    assert row["score"] == f"{stock_total(warmup, 'ann'):g}", "as nbgrader export counts it"
