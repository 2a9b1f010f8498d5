"""Intake from an LMS zip and from folders, with a clear list of what could not be matched."""
import json
import zipfile
from pathlib import Path

import pytest

from conftest import make_course_copy, rnn, rnn_scores
from grader.collect import intake
from grader.course import release, solutions
from grader_eval import stock
import rnn_course
from rnn_course import samples
from grader.core.errors import KitError
from grader.course import coursedir


@pytest.fixture()
def course_dir(tmp_path):
    target = make_course_copy(tmp_path / "course")
    release.generate(target, rnn_course.ASSIGNMENT)
    return target


def notebook_text():
    return json.dumps(samples.fill({}).dict())


def test_canvas_zip_is_laid_out_and_unmatched_files_are_listed(course_dir, tmp_path):
    archive = tmp_path / "samples.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("doejane_1001_5001_rnn_step_by_step.ipynb", notebook_text())
        z.writestr("doejane_LATE_1001_5002_rnn_step_by_step-1.ipynb", notebook_text() + " ")
        z.writestr("roebob_1002_5003_homework.ipynb", notebook_text())
        z.writestr("smithal_1003_5004_rnn_step_by_step.ipynb", notebook_text())
        z.writestr("smithal_1003_5004_helpers.py", "x = 1\n")
        z.writestr("notes.txt", "hello")
    found = intake.collect(archive, rnn(course_dir))
    assert sorted(found.files) == ["doejane", "smithal"]
    folder = course_dir / "submitted" / "doejane" / rnn_course.ASSIGNMENT
    assert (folder / "rnn_step_by_step.ipynb").read_text().endswith(" "), "the newest resubmission is kept"
    assert (course_dir / "submitted" / "smithal" / rnn_course.ASSIGNMENT / "helpers.py").exists()
    unmatched = dict(found.unmatched)
    assert "is not a notebook of rnn_step_by_step" in unmatched["roebob_1002_5003_homework.ipynb"]
    assert "does not say whose it is" in unmatched["notes.txt"]
    assert found.lms_ids == {"doejane": "1001", "smithal": "1003"}
    text = intake.describe(found, rnn(course_dir))
    assert "NOT COLLECTED (2 files)" in text and "roebob" in text


def test_folder_per_student_and_notebook_per_student(course_dir, tmp_path):
    source = tmp_path / "download"
    (source / "alice").mkdir(parents=True)
    (source / "alice" / "rnn_step_by_step.ipynb").write_text(notebook_text())
    (source / "bob.ipynb").write_text(notebook_text())
    (source / "carol").mkdir()
    (source / "carol" / "draft.py").write_text("")
    found = intake.collect(source, rnn(course_dir))
    assert sorted(found.files) == ["alice", "bob"]
    assert ("carol/draft.py", f"carol sent no {rnn_course.NOTEBOOK}.ipynb") in found.unmatched


def test_bad_sources_and_patterns_are_refused_with_the_fix(course_dir, tmp_path):
    with pytest.raises(KitError, match="does not exist"):
        intake.collect(tmp_path / "nowhere.zip", rnn(course_dir))
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(KitError, match="cannot unpack broken.zip"):
        intake.collect(tmp_path / "broken.zip", rnn(course_dir))
    with pytest.raises(KitError, match="named groups"):
        intake.collect(tmp_path, rnn(course_dir), pattern=r"(?P<student>\w+)")


def test_lms_ids_reach_the_gradebook_the_csv_and_canvas_import_file(course_dir, tmp_path, capsys):
    """Canvas's gradebook import: its five leading columns, a Points Possible row, a row per student keyed by
    the Canvas user ID from the download, with nbgrader's score (blank while it awaits a manual grade); a
    student with no Canvas ID is left out and named."""
    import csv
    from grader import cli
    archive = tmp_path / "dl.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("doejane_1001_5001_rnn_step_by_step.ipynb", notebook_text())
        z.writestr("smithal_1003_5004_rnn_step_by_step.ipynb", json.dumps(samples.fill(samples.master_solutions()).dict()))
        z.writestr("roebob_1002_5003_rnn_step_by_step.ipynb", "{ not a notebook")
    intake.collect(archive, rnn(course_dir))
    samples.write(samples.fill({}), course_dir, "walkin")  # handed in on paper: no Canvas ID
    capsys.readouterr()
    cli.grade_and_report(course_dir)
    out = capsys.readouterr().out
    assert "doejane,1001,graded,," in (course_dir / "autograded" / "rnn_step_by_step_grades.csv").read_text()
    assert rnn_scores(course_dir)["doejane"]["test_rnn_forward"] == 0
    with open(course_dir / "autograded" / "rnn_step_by_step_canvas.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", rnn_course.ASSIGNMENT]
    assert rows[1] == ["Points Possible", "", "", "", "", "100"]
    exported = stock.export(course_dir)
    assert {r[1]: r[5] for r in rows[2:]} == {"1001": f"{exported['doejane']['score']:g}",
                                                "1003": f"{exported['smithal']['score']:g}", "1002": ""}
    assert exported["smithal"]["score"] == 120  # the optional part: extra credit over the 100 possible
    assert "The Canvas CSV leaves out 1 student with no Canvas user ID (walkin)" in out


def _csv(course_dir):
    import csv
    with open(course_dir / "autograded" / "rnn_step_by_step_grades.csv") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def test_late_marks_are_kept_and_rejected_only_students_stay_out_of_the_gradebook(course_dir, tmp_path):
    """Canvas's LATE_ becomes a flag, a CSV column and a line on the student's page; a student whose
    every file was rejected never reaches the gradebook, so `nbgrader export` and the CSV agree."""
    from grader import cli
    from grader.course import gradebook
    archive = tmp_path / "dl.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("doejane_LATE_1001_5001_rnn_step_by_step.ipynb", notebook_text())
        z.writestr("smithal_1003_5004_rnn_step_by_step.ipynb", notebook_text())
        z.writestr("roebob_1002_5003_homework.ipynb", notebook_text())  # rejected: the wrong notebook
        # A student's own "timestamp" would move the deadline: never taken.
        z.writestr("smithal_1003_5005_timestamp.txt", "2020-01-01 00:00:00 UTC")
    found = intake.collect(archive, rnn(course_dir))
    assert not (course_dir / "submitted" / "smithal" / rnn_course.ASSIGNMENT / "timestamp.txt").exists()
    assert "the grader's own record" in dict(found.unmatched)["smithal_1003_5005_timestamp.txt"]
    assert found.late == {"doejane"} and "roebob" not in found.lms_ids
    assert "marked late by the LMS: doejane" in intake.describe(found, rnn(course_dir))
    assert cli.grade_and_report(course_dir) == 0
    course = coursedir.course_directory(course_dir)
    assert gradebook.roster(course) == {"doejane", "smithal"}, "a rejected-only student was added to the gradebook"
    rows = _csv(course_dir)
    assert rows["doejane"]["late"] == "late" and rows["smithal"]["late"] == ""
    page = (course_dir / "feedback" / "doejane" / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.html").read_text()
    assert "Your submission was late" in page


def test_a_timestamp_in_the_file_name_applies_the_courses_late_penalty_as_stock_nbgrader(course_dir, tmp_path):
    """A --pattern with a timestamp group gives nbgrader's timestamp.txt; with a due date and
    LateSubmissionPlugin.penalty_method = 'zero', the kit's penalty is the one stock autograde gives."""
    import subprocess
    import sys
    from grader import cli
    with open(course_dir / "nbgrader_config.py", "a") as f:
        f.write("\nc.LateSubmissionPlugin.penalty_method = 'zero'\n")
    env_bin = str(Path(sys.executable).parent)
    subprocess.run([f"{env_bin}/nbgrader", "db", "assignment", "add", rnn_course.ASSIGNMENT,
                    "--duedate=2026-11-01 12:00:00 UTC"], cwd=course_dir, check=True, capture_output=True)
    correct = json.dumps(samples.fill(samples.master_solutions()).dict())
    source = tmp_path / "dl"
    source.mkdir()
    (source / "early--2026-10-30 10:00:00 UTC--rnn_step_by_step.ipynb").write_text(correct)
    (source / "tardy--2026-11-02 09:30:00 UTC--rnn_step_by_step.ipynb").write_text(correct)
    pattern = r"^(?P<student_id>[a-z]+)--(?P<timestamp>.+?)--(?P<file_id>.+)$"
    intake.collect(source, rnn(course_dir), pattern=pattern)
    stamp = course_dir / "submitted" / "tardy" / rnn_course.ASSIGNMENT / "timestamp.txt"
    assert stamp.read_text() == "2026-11-02 09:30:00 UTC"
    cli.grade_and_report(course_dir)
    rows = _csv(course_dir)
    assert (rows["early"]["score"], rows["early"]["late_submission_penalty"]) == ("120", "0")
    assert (rows["tardy"]["raw_score"], rows["tardy"]["late_submission_penalty"], rows["tardy"]["score"]) \
        == ("120", "120", "0")
    assert stock.export(course_dir)["tardy"]["late_submission_penalty"] == 120.0
    page = (course_dir / "feedback" / "tardy" / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.html").read_text()
    assert "takes 120 points off" in page


def test_misplaced_extra_and_empty_input_are_named_with_the_fix(course_dir, tmp_path):
    import subprocess
    import sys
    run = lambda *a: subprocess.run([sys.executable, "-m", "grader", "--course-dir", str(course_dir), *a],
                                    capture_output=True, text=True, timeout=600)
    (tmp_path / "empty").mkdir()
    result = run("collect", str(tmp_path / "empty"))
    assert result.returncode == 2 and "nothing to collect" in result.stderr
    only_wrong = tmp_path / "wrong"
    only_wrong.mkdir()
    (only_wrong / "notes.txt").write_text("x")
    result = run("collect", str(only_wrong))
    assert result.returncode == 1 and "Collected 0 submissions" in result.stdout and "Next:" not in result.stdout
    # A notebook straight in submitted/<student>/, and a second notebook beside the right one.
    (course_dir / "submitted" / "alice").mkdir(parents=True)
    (course_dir / "submitted" / "alice" / "rnn_step_by_step.ipynb").write_text(notebook_text())
    result = run("grade")
    assert result.returncode == 2 and "submitted/alice/rnn_step_by_step.ipynb" in result.stderr
    assert "move it to submitted/alice/rnn_step_by_step/" in result.stderr
    samples.write(samples.fill({}), course_dir, "bob")
    solutions.write(samples.fill({}), course_dir, "bob", rnn_course.ASSIGNMENT, "rnn_step_by_step-Copy1")
    result = run("grade")
    assert result.returncode == 1, result.stderr
    assert "submitted/bob/rnn_step_by_step/rnn_step_by_step-Copy1.ipynb: a second notebook" in result.stdout
    assert "rename it to rnn_step_by_step.ipynb" in result.stdout


def test_a_due_date_or_late_policy_set_after_grading_applies_at_the_next_publish(course_dir, tmp_path):
    """Graded before any due date; the instructor then sets one and a policy: `publish` (no regrade)
    applies the penalty to the gradebook, the CSV, `nbgrader export` and the page, and says so; a due
    date moved later takes it away again."""
    import subprocess
    import sys
    from grader import cli
    correct = json.dumps(samples.fill(samples.master_solutions()).dict())
    source = tmp_path / "dl"
    source.mkdir()
    (source / "early--2026-10-30 10:00:00 UTC--rnn_step_by_step.ipynb").write_text(correct)
    (source / "tardy--2026-11-02 09:30:00 UTC--rnn_step_by_step.ipynb").write_text(correct)
    intake.collect(source, rnn(course_dir), pattern=r"^(?P<student_id>[a-z]+)--(?P<timestamp>.+?)--(?P<file_id>.+)$")
    cli.grade_and_report(course_dir)
    assert _csv(course_dir)["tardy"]["late_submission_penalty"] == "0"

    env_bin = Path(sys.executable).parent

    def due(date):
        subprocess.run([str(env_bin / "nbgrader"), "db", "assignment", "add", rnn_course.ASSIGNMENT, f"--duedate={date}"],
                       cwd=course_dir, check=True, capture_output=True)

    def publish():
        out = subprocess.run([sys.executable, "-m", "grader", "--course-dir", str(course_dir), "publish"],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        return out.stdout

    with open(course_dir / "nbgrader_config.py", "a") as f:
        f.write("\nc.LateSubmissionPlugin.penalty_method = 'zero'\n")
    due("2026-11-01 12:00:00 UTC")
    out = publish()
    assert "Late penalties now follow the course's due date and late policy: changed for 1 student (tardy)" in out
    rows = _csv(course_dir)
    assert (rows["tardy"]["late_submission_penalty"], rows["tardy"]["score"]) == ("120", "0")
    assert rows["early"]["late_submission_penalty"] == "0"
    assert stock.export(course_dir)["tardy"]["late_submission_penalty"] == 120.0
    page = (course_dir / "feedback" / "tardy" / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.html").read_text()
    assert "takes 120 points off" in page
    assert "Late penalties" not in publish()  # nothing changed since

    due("2026-11-03 12:00:00 UTC")
    assert "changed for 1 student (tardy)" in publish()
    assert _csv(course_dir)["tardy"]["score"] == "120" and stock.export(course_dir)["tardy"]["score"] == 120.0


def test_a_later_collect_replaces_only_the_files_it_brings_and_keeps_the_replaced_aside(tmp_path):
    """A course of two notebooks (nbgrader's quickstart-like warmup): a first download with both, then a late
    resubmission of one in Canvas's names (`-1`), then a re-download with only the other. Nothing is lost: the
    file not in a download stays, a replaced one is kept aside, and collect says which is which."""
    import shutil
    from grader.course import assignments
    from small_assignments import ROOT, SECOND, add_warmup
    course = tmp_path / "course"
    add_warmup(course)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    release.generate(course, "warmup")
    layout = assignments.find(course, "warmup")
    first, second = layout.release("warmup").read_text(), layout.release(SECOND).read_text()
    download = tmp_path / "one.zip"
    with zipfile.ZipFile(download, "w") as z:
        z.writestr("doejane_1001_5001_warmup.ipynb", first)
        z.writestr(f"doejane_1001_5001_{SECOND}.ipynb", second)
        z.writestr("kimtom_1002_5002_warmup.ipynb", first)
    said = intake.describe(intake.collect(download, layout), layout)
    assert f"kimtom: no {SECOND}.ipynb (graded as released" in said and "doejane: no" not in said
    late = tmp_path / "two.zip"
    with zipfile.ZipFile(late, "w") as z:
        z.writestr("doejane_LATE_1001_5009_warmup-1.ipynb", first + " ")
    found = intake.collect(late, layout)
    folder = course / "submitted" / "doejane" / "warmup"
    assert (folder / "warmup.ipynb").read_text().endswith(" "), "the resubmission replaced its notebook"
    assert (folder / f"{SECOND}.ipynb").read_text() == second, "the other notebook stayed"
    assert (folder / assignments.LATE_FILE).exists(), "the newest download's late mark"
    aside = list((course / intake.BACKUPS).glob("*/doejane/warmup/warmup.ipynb"))
    assert len(aside) == 1 and aside[0].read_text() == first, "the replaced copy is kept aside"
    text = intake.describe(found, layout)
    assert "doejane: replaced warmup.ipynb" in text and f"kept {SECOND}.ipynb from before" in text
    again = tmp_path / "three.zip"
    with zipfile.ZipFile(again, "w") as z:
        z.writestr(f"doejane_1001_5010_{SECOND}.ipynb", second)
    intake.collect(again, layout)
    assert (folder / "warmup.ipynb").read_text().endswith(" ") and not (folder / assignments.LATE_FILE).exists()


def test_a_download_of_another_assignment_is_one_line_and_collects_nothing(course_dir, tmp_path):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for student in ("doejane", "roebob", "smithal"):
            z.writestr(f"{student}_1001_5001_homework3.ipynb", notebook_text())
    with pytest.raises(KitError, match=r"none of the files in .* is a notebook of rnn_step_by_step .*another "
                                       r"assignment.*Nothing was collected"):
        intake.collect(archive, rnn(course_dir))
    assert not (course_dir / "submitted").exists()


def test_a_damaged_archive_says_whether_anything_of_it_was_unpacked(tmp_path):
    """A tar.gz cut short in its first member: nothing of it was unpacked, and the note says so."""
    import io
    import os
    import tarfile
    from grader.collect import archives
    for members, said in (([("big.bin", 200_000)], "nothing in it could be unpacked"),
                          ([("first.txt", 5), ("big.bin", 200_000)], "only what came before the damage was unpacked")):
        whole = tmp_path / f"upload-{len(members)}.tar.gz"
        with tarfile.open(whole, "w:gz") as tar:
            for name, size in members:
                info = tarfile.TarInfo(name)
                info.size = size
                tar.addfile(info, io.BytesIO(os.urandom(size)))
        data = whole.read_bytes()
        whole.write_bytes(data[:len(data) // 2])
        budget = archives.Budget()
        assert archives.unpack(whole, tmp_path / f"out-{len(members)}", budget, "jdoe: upload.tar.gz")
        assert any(said in why for _, why in budget.notes), budget.notes


def test_a_later_collect_writes_through_no_link_in_a_submission_folder(tmp_path):
    """A submission folder that holds a link (put there by nbgrader's exchange, or by hand): a later download's
    file under it is refused and named, and what the link points at is left as it was."""
    import os
    import shutil
    from grader.course import assignments
    from small_assignments import ROOT, add_warmup
    course = tmp_path / "course"
    add_warmup(course)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    release.generate(course, "warmup")
    layout = assignments.find(course, "warmup")
    folder = course / "submitted" / "doejane" / "warmup"
    folder.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.txt").write_text("keep")
    os.symlink(outside, folder / "sub")
    download = tmp_path / "d.zip"
    with zipfile.ZipFile(download, "w") as z:
        for student in ("doejane", "kimtom"):
            z.writestr(f"{student}/warmup.ipynb", layout.release("warmup").read_text())
        z.writestr("doejane/sub/data.txt", "overwritten")
    found = intake.collect(download, layout)
    assert (outside / "data.txt").read_text() == "keep"
    assert any("a link stands in its place" in why for _, why in found.unmatched)
