"""Intake from an LMS zip and from folders, with a clear list of what could not be matched."""
import json
import zipfile

import pytest

from conftest import make_course_copy
from grader import course, intake, release, stock, submissions
from grader.release import KitError


@pytest.fixture()
def course_dir(tmp_path):
    target = make_course_copy(tmp_path / "course")
    release.generate(target)
    return target


def notebook_text():
    return json.dumps(submissions.fill({}).dict())


def test_canvas_zip_is_laid_out_and_unmatched_files_are_listed(course_dir, tmp_path):
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("doejane_1001_5001_rnn_step_by_step.ipynb", notebook_text())
        z.writestr("doejane_LATE_1001_5002_rnn_step_by_step-1.ipynb", notebook_text() + " ")
        z.writestr("roebob_1002_5003_homework.ipynb", notebook_text())
        z.writestr("smithal_1003_5004_rnn_step_by_step.ipynb", notebook_text())
        z.writestr("smithal_1003_5004_helpers.py", "x = 1\n")
        z.writestr("notes.txt", "hello")
    found = intake.collect(archive, course_dir)
    assert sorted(found.files) == ["doejane", "smithal"]
    folder = course_dir / "submitted" / "doejane" / course.ASSIGNMENT
    assert (folder / "rnn_step_by_step.ipynb").read_text().endswith(" "), "the newest resubmission is kept"
    assert (course_dir / "submitted" / "smithal" / course.ASSIGNMENT / "helpers.py").exists()
    unmatched = dict(found.unmatched)
    assert "not this assignment's notebook" in unmatched["roebob_1002_5003_homework.ipynb"]
    assert "does not say whose it is" in unmatched["notes.txt"]
    assert found.lms_ids == {"doejane": "1001", "smithal": "1003"}
    text = intake.describe(found, course_dir)
    assert "NOT COLLECTED (2 files)" in text and "roebob" in text


def test_folder_per_student_and_notebook_per_student(course_dir, tmp_path):
    source = tmp_path / "download"
    (source / "alice").mkdir(parents=True)
    (source / "alice" / "rnn_step_by_step.ipynb").write_text(notebook_text())
    (source / "bob.ipynb").write_text(notebook_text())
    (source / "carol").mkdir()
    (source / "carol" / "draft.py").write_text("")
    found = intake.collect(source, course_dir)
    assert sorted(found.files) == ["alice", "bob"]
    assert ("carol/draft.py", f"carol sent no {course.NOTEBOOK}.ipynb") in found.unmatched


def test_bad_sources_and_patterns_are_refused_with_the_fix(course_dir, tmp_path):
    with pytest.raises(KitError, match="does not exist"):
        intake.collect(tmp_path / "nowhere.zip", course_dir)
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(KitError, match="cannot unpack broken.zip"):
        intake.collect(tmp_path / "broken.zip", course_dir)
    with pytest.raises(KitError, match="named groups"):
        intake.collect(tmp_path, course_dir, pattern=r"(?P<student>\w+)")


def test_lms_ids_reach_the_gradebook_and_the_csv(course_dir, tmp_path):
    from grader import cli
    archive = tmp_path / "dl.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("doejane_1001_5001_rnn_step_by_step.ipynb", notebook_text())
    intake.collect(archive, course_dir)
    cli.grade_and_report(course_dir)
    assert "doejane,1001,graded,0," in (course_dir / "autograded" / "grades.csv").read_text()
    assert stock.scores(course_dir)["doejane"]["test_rnn_forward"] == 0
