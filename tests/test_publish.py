"""The gradebook is the one source of grades: grading by hand in a real formgrader, then `publish`.

A real Jupyter server with nbgrader's formgrader runs on a copy of the graded samples.
Through formgrader's own web API (what its pages call) the test opens the submission
the kit sent to manual grading, gives manual grades, extra credit and a comment; then
`publish` must carry them to every output, and the kit's CSV must agree with
`nbgrader export` on every number. Feedback must reach students the nbgrader way.
"""
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from conftest import DEMO_LIMITS, make_course_copy, write_samples
from grader import cli
from grader.course import release
from grader_eval import stock
import rnn_course
from rnn_course import samples

BIN = Path(sys.executable).parent
NOTEBOOK_HTML = f"{rnn_course.NOTEBOOK}.html"


def kit(course_dir, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "grader", "--course-dir", str(course_dir), *args],
                          capture_output=True, text=True, timeout=900, cwd=cwd)


def nbgrader(course_dir, *args):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([str(BIN / "nbgrader"), *args], cwd=course_dir, env=env, capture_output=True, text=True,
                          timeout=900)


def kit_csv(course_dir):
    with open(course_dir / "autograded" / "rnn_step_by_step_grades.csv") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


class Formgrader:
    """nbgrader's formgrader in a real Jupyter server, driven through the web API its pages use."""

    def __init__(self, course_dir, scratch):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.token = "formgrader-test-token"
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", JUPYTER_RUNTIME_DIR=str(scratch),
                   JUPYTER_DATA_DIR=str(scratch / "data"), HOME=str(scratch))
        self.log = open(scratch / "server.log", "w")
        self.process = subprocess.Popen(
            [str(BIN / "jupyter"), "server", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
             f"--ServerApp.token={self.token}", "--allow-root", f"--ServerApp.root_dir={course_dir}"],
            cwd=course_dir, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.get("/formgrader/api/status")
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"formgrader did not start: {(scratch / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)

    def request(self, path, method="GET", body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()

    def get(self, path):
        return self.request(path)[1]

    def api(self, path, method="GET", body=None):
        return json.loads(self.request(path, method, body)[1])

    def submission(self, student):
        for item in self.api(f"/formgrader/api/submitted_notebooks/{rnn_course.ASSIGNMENT}/{rnn_course.NOTEBOOK}"):
            if item["student"] == student:
                return item["id"]
        raise KeyError(student)

    def grades(self, student):
        return {g["name"]: g for g in self.api(f"/formgrader/api/grades?submission_id={self.submission(student)}")}

    def grade(self, student, test, manual_score=None, extra_credit=None):
        grade_id = self.grades(student)[test]["id"]
        self.api(f"/formgrader/api/grade/{grade_id}", "PUT",
                 {"manual_score": manual_score, "extra_credit": extra_credit})

    def comment(self, student, cell, text):
        comments = self.api(f"/formgrader/api/comments?submission_id={self.submission(student)}")
        comment_id = next(c["id"] for c in comments if c["name"] == cell)
        self.api(f"/formgrader/api/comment/{comment_id}", "PUT", {"manual_comment": text})

    def stop(self):
        os.killpg(self.process.pid, 15)
        self.process.wait(timeout=60)
        self.log.close()


@pytest.fixture(scope="module")
def hand_graded(tmp_path_factory):
    """The samples graded by the kit, then graded by hand in formgrader, then published."""
    scratch = tmp_path_factory.mktemp("formgrader")
    course_dir = make_course_copy(scratch / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    write_samples(course_dir)
    scripted = samples.fill(samples.master_solutions())
    scripted.cells.insert(1, new_markdown_cell(f"My notes <img src=x onerror=\"{SCRIPTED}=1\"> "
                                               f"<script>{SCRIPTED}=2</script> [a](javascript\\:{SCRIPTED}=5) "
                                               f"[b](javascript&colon;{SCRIPTED}=6) [c]\n\n[c]: javascript\\:{SCRIPTED}=7"))
    scripted.cells.insert(2, new_code_cell("from IPython.display import HTML, Javascript, display\n"
                                           f"display(HTML('<b>hi</b><script>{SCRIPTED}=3</script>'))\n"
                                           f"display(Javascript('{SCRIPTED}=4'))"))
    samples.write(scripted, course_dir, "sample_scripted")
    assert cli.grade_and_report(course_dir, limits=DEMO_LIMITS) == cli.NEEDS_ATTENTION
    server = Formgrader(course_dir, scratch)
    try:
        scripted_page = server.get(f"/formgrader/submissions/{server.submission('sample_scripted')}/")
        # The submission the kit could not open is shown by formgrader (it was an HTTP 500 before).
        status, page = server.request(f"/formgrader/submissions/{server.submission('sample_broken')}/")
        for function in rnn_course.GRADED_FUNCTIONS + rnn_course.OPTIONAL_FUNCTIONS:
            server.grade("sample_broken", f"test_{function}", manual_score=5.0)
        server.grade("sample_partial", "test_lstm_forward", manual_score=20.0)
        server.comment("sample_partial", "lstm_forward", "Close: the cell state must come from the last step.")
        server.grade("sample_blank", "test_rnn_cell_forward", extra_credit=3.0)
    finally:
        server.stop()
    published = kit(course_dir, "publish")
    return course_dir, status, page, published, scripted_page


SCRIPTED = "window.ScriptedByAStudent"


def test_a_students_html_and_script_stay_inert_in_formgrader(hand_graded):
    """Formgrader shows a submission in the instructor's browser session: a student's markup in a
    markdown cell or a display must not become live HTML or script there."""
    page = hand_graded[4]
    assert "My notes" in page, "the student's markdown cell is shown"

    class Live(HTMLParser):
        """Event handlers and scripts as a browser would find them in the page."""
        handlers, scripts, in_script = [], [], False

        def handle_starttag(self, tag, attrs):
            self.handlers += [value for name, value in attrs if name.startswith("on")
                              or (name in ("href", "src") and "script" in "".join((value or "").split()).lower())]
            self.in_script = tag == "script"

        def handle_data(self, data):
            if self.in_script:
                self.scripts.append(data)

    live = Live()
    live.feed(page)
    assert not any(SCRIPTED in h for h in live.handlers), live.handlers
    assert not any(SCRIPTED in s for s in live.scripts)
    assert SCRIPTED + "=1" in page, "the student's text is shown, as text"


def test_a_submission_sent_to_manual_grading_opens_in_formgrader(hand_graded):
    course_dir, status, page, *_ = hand_graded
    assert status == 200
    assert "could not grade this submission" in page and "not valid JSON" in page
    kept = course_dir / "autograded" / "sample_broken" / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.ipynb.as-submitted"
    assert kept.read_bytes() == (course_dir / "submitted" / "sample_broken" / rnn_course.ASSIGNMENT /
                                 f"{rnn_course.NOTEBOOK}.ipynb").read_bytes(), "the student's file is kept as sent"


def test_the_kits_csv_agrees_with_nbgrader_export_after_manual_grades_and_extra_credit(hand_graded):
    course_dir, _, _, published, _ = hand_graded
    # Nothing awaits a manual grade any more; sample_endless (timed out) still needs attention: exit 1, as grade.
    assert published.returncode == 1, published.stderr
    mine, theirs = kit_csv(course_dir), stock.export(course_dir)
    assert set(mine) == set(theirs)
    for student, row in theirs.items():
        for column in ("raw_score", "late_submission_penalty", "score", "max_score"):
            assert float(mine[student][column]) == row[column], (student, column)
    assert float(mine["sample_partial"]["lstm_forward"]) == 20 and mine["sample_partial"]["hand_graded"] == \
        "lstm_forward"
    assert float(mine["sample_blank"]["rnn_cell_forward"]) == 3  # automatic 0 + extra credit 3
    assert float(mine["sample_broken"]["score"]) == 40 and mine["sample_broken"]["rnn_forward"] == "5"


def test_manual_grades_and_comments_reach_the_table_the_report_and_the_feedback_page(hand_graded):
    course_dir, _, _, published, _ = hand_graded
    rows = {line.split()[0]: line.split() for line in published.stdout.splitlines()
            if line.startswith("sample_")}
    assert rows["sample_partial"][1:3] == ["70", "0"] and "20*" in rows["sample_partial"]
    assert "* a score given by hand (in formgrader, or with manual-grades)" in published.stdout
    page = (course_dir / "feedback" / "sample_partial" / rnn_course.ASSIGNMENT / NOTEBOOK_HTML).read_text()
    assert "Close: the cell state must come from the last step." in page
    assert "scored by your instructor" in page and "70 / 100" in page
    broken = (course_dir / "feedback" / "sample_broken" / rnn_course.ASSIGNMENT / NOTEBOOK_HTML).read_text()
    assert "40 / 120" in broken and "waiting for your instructor" not in broken
    # graded by hand in full: the loop is closed, no "no score yet" banner, nothing left for the instructor
    assert "graded this submission by hand" in broken and "until then it has no score" not in broken
    report = (course_dir / "autograded" / "rnn_step_by_step_report.html").read_text()
    assert "0 await a manual grade" in report and "(2 of them changed by hand)" in report
    attention = report.split("Needs your attention", 1)[1].split("Every student", 1)[0]
    assert "sample_broken" not in attention and "sample_endless" in attention


def test_regrading_keeps_the_manual_grades(hand_graded, tmp_path):
    course_dir = tmp_path / "course"
    shutil.copytree(hand_graded[0], course_dir)
    result = kit(course_dir, "grade", "--force", "--student", "sample_partial", "--student", "sample_broken", "--cell-timeout", "5",
                 "--budget", "10")
    assert result.returncode in (0, 1), result.stderr
    mine = kit_csv(course_dir)
    assert float(mine["sample_partial"]["lstm_forward"]) == 20 and float(mine["sample_broken"]["score"]) == 40


def test_nbgrader_generate_feedback_works_on_every_submission_including_the_placeholder(hand_graded, tmp_path):
    course_dir = tmp_path / "course"
    shutil.copytree(hand_graded[0], course_dir)
    result = nbgrader(course_dir, "generate_feedback", rnn_course.ASSIGNMENT, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (course_dir / "feedback" / "sample_broken" / rnn_course.ASSIGNMENT / NOTEBOOK_HTML).exists()


def test_feedback_reaches_students_through_nbgrader_release_and_fetch_feedback(graded_course, tmp_path):
    """The nbgrader exchange end to end: release, fetch, submit, collect, grade with the kit,
    `nbgrader release_feedback`, and the student's `nbgrader fetch_feedback` gets the kit's page."""
    from rnn_course import samples

    course_dir = tmp_path / "course"
    shutil.copytree(graded_course, course_dir)
    exchange, student_home = tmp_path / "exchange", tmp_path / "student"
    exchange.mkdir()
    student_home.mkdir()
    os.chmod(exchange, 0o777)
    with open(course_dir / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    (student_home / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\nc.CourseDirectory.course_id = 'rnn_step_by_step'\n")
    assert nbgrader(course_dir, "release_assignment", rnn_course.ASSIGNMENT).returncode == 0
    assert nbgrader(student_home, "fetch_assignment", rnn_course.ASSIGNMENT).returncode == 0
    # The student solves the forward RNN and submits.
    solved = samples.fill({k: v for k, v in samples.master_solutions().items() if k == "rnn_cell_forward"})
    import nbformat
    nbformat.write(solved, str(student_home / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.ipynb"))
    student = os.environ.get("USER") or __import__("getpass").getuser()
    assert nbgrader(student_home, "submit", rnn_course.ASSIGNMENT).returncode == 0
    assert nbgrader(course_dir, "collect", rnn_course.ASSIGNMENT).returncode == 0
    graded = kit(course_dir, "grade", "--cell-timeout", "5", "--budget", "10")
    assert graded.returncode in (0, 1), graded.stderr
    ours = (course_dir / "feedback" / student / rnn_course.ASSIGNMENT / NOTEBOOK_HTML).read_text()
    assert "rnn_cell_forward" in ours and "25 / 25" in ours
    released = nbgrader(course_dir, "release_feedback", rnn_course.ASSIGNMENT)
    assert released.returncode == 0, released.stdout + released.stderr
    fetched = nbgrader(student_home, "fetch_feedback", rnn_course.ASSIGNMENT)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    pages = list((student_home / rnn_course.ASSIGNMENT / "feedback").rglob(NOTEBOOK_HTML))
    assert len(pages) == 1 and pages[0].read_text() == ours


def test_publish_says_how_to_create_nbgraders_exchange_and_the_command_works_as_printed(graded_course, tmp_path):
    """On a fresh machine nbgrader's exchange does not exist, and `release_feedback` fails with "Unwritable
    directory". Publishing says what to run; run as printed, it makes the exchange, and the hint goes."""
    course_dir = tmp_path / "course"
    shutil.copytree(graded_course, course_dir)
    exchange = tmp_path / "not yet" / "exchange"
    with open(course_dir / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    assert "does not exist yet" not in kit(course_dir, "publish").stdout, "a class collected from an LMS: no notice"
    write_samples(course_dir, ["sample_correct"])
    submitted = course_dir / "submitted" / "sample_correct" / rnn_course.ASSIGNMENT
    (submitted / "submission_secret.txt").write_text("0123456789abcdef")  # as `nbgrader collect` leaves it
    first = kit(course_dir, "publish")
    assert "does not exist yet" in first.stdout, first.stdout
    assert first.stdout.count("does not exist yet") == 1
    command = first.stdout.split("does not exist yet", 1)[1].splitlines()[1].strip()
    assert subprocess.run(command, shell=True).returncode == 0, command
    assert exchange.is_dir() and (exchange.stat().st_mode & 0o7777) == 0o1777
    assert "does not exist yet" not in kit(course_dir, "publish").stdout


def test_students_and_assignments_of_another_tool_in_the_gradebook_are_named_once(graded_course, tmp_path):
    """`nbgrader quickstart` run in the kit's folder adds its example's students to the kit's gradebook; they
    have no folder anywhere in the course. Publish names them once, with the command that takes them out."""
    course_dir = tmp_path / "course"
    shutil.copytree(graded_course, course_dir)
    for student in ("bitdiddle", "hacker"):
        subprocess.run([str(BIN / "nbgrader"), "db", "student", "add", student], cwd=course_dir, check=True,
                       capture_output=True, timeout=300)
    subprocess.run([str(BIN / "nbgrader"), "db", "assignment", "add", "ps1"], cwd=course_dir, check=True,
                   capture_output=True, timeout=300)
    out = kit(course_dir, "publish").stdout
    assert out.count("with no folder anywhere in this course") == 1, out
    assert "2 students (bitdiddle, hacker) and 1 assignment (ps1)" in out
    assert "remove-students bitdiddle hacker" in out
