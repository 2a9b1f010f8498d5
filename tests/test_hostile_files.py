"""One student cannot stop the class: hostile files and names in submission folders, on real files.

One batch grades, beside two honest controls, students whose folders hold what a determined
student (or a damaged download) hands in: named pipes, sockets, device nodes, links, names that
are not UTF-8, records that are not what they claim, files and trees far too large. The batch must
finish, the controls must score exactly what they score alone, each offender must get a clear
status or note, and nothing of the master or the gradebook may reach any output.
"""
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import nbformat
import pytest

from conftest import DEMO_LIMITS, make_course_copy, rnn, rnn_scores
from grader.core import student_files
from grader.course import release
from grader.grade import batch
from grader.judge import grading
from grader import terminal
from grader.report import publish
import rnn_course
from rnn_course import samples
from grader.core.model import GRADED, INVALID, MISSING

NOTEBOOK = f"{rnn_course.NOTEBOOK}.ipynb"
CORRECT_TOTAL, WRONG_TOTAL = 120.0, 70.0


def _wrong_answers():
    answers = samples.master_solutions()
    answers["rnn_cell_forward"] = samples.mutate(answers["rnn_cell_forward"], "np.tanh(", "sigmoid(")
    return answers


def _folder(course_dir, student):
    """submitted/<student>/<assignment>/ with a correct notebook in it; `student` may be bytes."""
    root = os.fsencode(course_dir / "submitted")
    name = student if isinstance(student, bytes) else student.encode()
    folder = os.path.join(root, name, rnn_course.ASSIGNMENT.encode())
    os.makedirs(folder)
    samples.write(samples.fill(samples.master_solutions()), course_dir, "_scratch")
    os.replace(os.fsencode(course_dir / "submitted" / "_scratch" / rnn_course.ASSIGNMENT / NOTEBOOK),
               os.path.join(folder, NOTEBOOK.encode()))
    os.rmdir(course_dir / "submitted" / "_scratch" / rnn_course.ASSIGNMENT)
    os.rmdir(course_dir / "submitted" / "_scratch")
    return folder


def _bind_socket(path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(os.fsdecode(path))
    return server


# What each hostile student's folder holds, beside a correct notebook (or instead of it).
def _build(course_dir):
    master = course_dir / "source" / rnn_course.ASSIGNMENT / NOTEBOOK
    gradebook = course_dir / "gradebook.db"
    held = []
    f = _folder(course_dir, "pipe_beside")
    os.mkfifo(os.path.join(f, b"data.csv"))
    f = _folder(course_dir, "pipe_notebook")
    os.unlink(os.path.join(f, NOTEBOOK.encode()))
    os.mkfifo(os.path.join(f, NOTEBOOK.encode()))
    f = _folder(course_dir, "socket_beside")
    held.append(_bind_socket(os.path.join(f, b"sock")))
    f = _folder(course_dir, "device_beside")
    os.mknod(os.path.join(f, b"zero.bin"), 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # like /dev/zero: endless
    f = _folder(course_dir, "not_utf8_name")
    Path(os.fsdecode(os.path.join(f, b"notes-\xff\xfe.txt"))).write_text("hello")
    _folder(course_dir, b"student-\xff")
    _folder(course_dir, "control\x1b[2Jchars")
    f = _folder(course_dir, "link_notebook")
    os.unlink(os.path.join(f, NOTEBOOK.encode()))
    os.symlink(master, os.path.join(f, NOTEBOOK.encode()))
    f = _folder(course_dir, "link_beside")
    os.symlink(gradebook, os.path.join(f, b"grades.db"))
    os.symlink(master.parent, os.path.join(f, b"source"))
    f = _folder(course_dir, "timestamp_garbage")
    Path(os.fsdecode(os.path.join(f, b"timestamp.txt"))).write_text("whenever I like\n")
    f = _folder(course_dir, "timestamp_link")
    os.symlink(master, os.path.join(f, b"timestamp.txt"))
    f = _folder(course_dir, "timestamp_pipe")
    os.mkfifo(os.path.join(f, b"timestamp.txt"))
    f = _folder(course_dir, "secret_link")
    os.symlink(master, os.path.join(f, b"submission_secret.txt"))
    f = _folder(course_dir, "secret_binary")
    Path(os.fsdecode(os.path.join(f, b"submission_secret.txt"))).write_bytes(bytes(range(256)) * 4)
    f = _folder(course_dir, "huge_file")
    with open(os.path.join(f, b"big.bin"), "wb") as big:
        big.truncate(200 * 1024 * 1024)  # sparse: costs no disk, would cost 200 MB of memory to read whole
    f = _folder(course_dir, "deep_tree")
    deep = f
    for level in range(40):
        deep = os.path.join(deep, b"d")
    os.makedirs(deep)
    f = _folder(course_dir, "many_files")
    for i in range(student_files.MAX_ENTRIES + 50):
        open(os.path.join(f, f"f{i:05d}.txt".encode()), "w").close()
    f = _folder(course_dir, "notebook_is_a_folder")
    os.unlink(os.path.join(f, NOTEBOOK.encode()))
    os.mkdir(os.path.join(f, NOTEBOOK.encode()))
    os.symlink(course_dir / "submitted" / "honest_correct",
               os.fsencode(course_dir / "submitted" / "alias_of_another"))
    _notebook_tricks(course_dir)
    return held


def _code_cells(sources):
    """Code cells with these sources, as Jupyter saves them (nbformat's new_code_cell validates each one it makes:
    seconds for thousands)."""
    return [nbformat.from_dict({"cell_type": "code", "id": f"many-{k}", "metadata": {}, "source": source,
                                "outputs": [], "execution_count": None}) for k, source in enumerate(sources)]


# A report in the grader's own format for the cell that sends it, then a runner error whose text is half
# a character: no page, file or database takes such text as it is.
HALF_A_CHARACTER = (
    "import os, struct, json\n"
    "for body in (json.dumps({{'kind': 'cell', 'index': {index}, 'outputs': [], 'count': 1, 'timed_out': False, "
    "'truncated': False}}), '{{\"kind\": \"error\", \"message\": \"boom \\\\ud800\"}}'):\n"
    "    for fd in range(3, 256):\n        try:\n            os.write(fd, struct.pack('!I', len(body)) + body.encode())\n"
    "        except OSError:\n            pass\nos._exit(0)\n")


def _notebook_tricks(course_dir):
    from nbformat.v4 import new_code_cell, new_markdown_cell
    correct = samples.master_solutions()
    only_first = samples.fill({"rnn_cell_forward": correct["rnn_cell_forward"]})
    test = next(c for c in only_first.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_rnn_cell_forward")
    for _ in range(3):  # copies marked as nothing: overwritten from the master, each would be a test again
        copy = new_code_cell(test.source)
        copy.metadata["nbgrader"] = {"grade_id": "test_rnn_cell_forward", "grade": False, "solution": False,
                                     "locked": False}
        only_first.cells.append(copy)
    samples.write(only_first, course_dir, "duplicated_tests")
    flood = samples.fill(correct)
    flood.cells += _code_cells(["x = 1"] * (grading.MAX_CELLS + 1))
    samples.write(json.dumps(flood), course_dir, "cell_flood")
    # Honest, however odd: thousands of cells with nothing to run, and hundreds of MB of saved outputs (the
    # grader clears outputs before it runs anything; stock gives both full marks).
    empty = samples.fill(correct)
    empty.cells += _code_cells(["", "pass", "# a note", "   \n"][k % 4] for k in range(10_000))
    samples.write(json.dumps(empty), course_dir, "honest_empty_cells")
    printed = samples.fill(correct)
    for cell in [c for c in printed.cells if c.cell_type == "code"][:4]:
        cell.outputs = [nbformat.from_dict({"output_type": "stream", "name": "stdout",
                                            "text": ["saved output\n"] * 4_000_000})]  # as Jupyter saves it: lines
    # Written as JSON without indentation, as are the floods of cells: nbformat's writer validates a notebook and
    # indents it in Python, several seconds for these 16 million lines.
    samples.write(json.dumps(printed), course_dir, "honest_saved_outputs")
    half = samples.fill(correct)
    position = len(half.cells) - 1
    half.cells.insert(position, new_code_cell(HALF_A_CHARACTER.format(index=position)))
    samples.write(half, course_dir, "half_a_character")
    null_id = samples.fill(_wrong_answers())
    null_id.cells.append(new_code_cell("x = 1", metadata={"nbgrader": {"grade": True, "grade_id": None,
                                                                      "points": 1000}}))
    samples.write(null_id, course_dir, "null_grade_id")
    slow = samples.fill(correct)  # each shaped to make a backtracking pattern take hours
    slow.cells.append(new_code_cell("\n" * 300_000))
    slow.cells.append(new_code_cell("### BEGIN HIDDEN TESTS\n" * 100_000))
    samples.write(slow, course_dir, "slow_patterns")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    course_dir = make_course_copy(tmp_path_factory.mktemp("hostile"))
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    samples.write(samples.fill(samples.master_solutions()), course_dir, "honest_correct")
    samples.write(samples.fill(_wrong_answers()), course_dir, "honest_wrong")
    held = _build(course_dir)
    watched = [p for p in (course_dir / "source").rglob("*") if p.is_file()]
    before = {p: p.read_bytes() for p in watched}
    started = time.monotonic()
    done = batch.grade_batch(rnn(course_dir), limits=DEMO_LIMITS)
    assignment = done.spec
    published = publish.publish(rnn(course_dir), assignment)
    results, report = published.results, published.report
    seconds = time.monotonic() - started
    for server in held:
        server.close()
    return dict(course_dir=course_dir, done=done, results=results, seconds=seconds, before=before,
                table=terminal.score_table(results, assignment), report=report)


def _result(hostile, student):
    return hostile["done"].results[student]


def test_the_batch_finishes_and_the_honest_students_score_as_alone(hostile):
    assert _result(hostile, "honest_correct").total == CORRECT_TOTAL
    assert _result(hostile, "honest_wrong").total == WRONG_TOTAL
    assert _result(hostile, "honest_correct").status == GRADED
    assert hostile["seconds"] < 600  # nothing blocked on a pipe or a device (a hang would never return)


@pytest.mark.parametrize("student, path, why", [
    ("pipe_beside", "data.csv", "named pipe"),
    ("socket_beside", "sock", "socket"),
    ("device_beside", "zero.bin", "device"),
    ("not_utf8_name", "notes-\\xff\\xfe.txt", "not valid UTF-8"),
    ("link_beside", "grades.db", "link"),
    ("link_beside", "source", "link"),
    ("timestamp_garbage", "timestamp.txt", "not a date"),
    ("timestamp_link", "timestamp.txt", "link"),
    ("timestamp_pipe", "timestamp.txt", "named pipe"),
    ("huge_file", "big.bin", "over 32 MB"),
    ("deep_tree", "/".join(["d"] * (student_files.MAX_DEPTH + 1)), "nested over"),
    ("many_files", f"f{student_files.MAX_ENTRIES - 1:05d}.txt", "over 2000 files and folders"),
])
def test_a_file_that_breaks_a_rule_is_refused_for_that_student_alone_and_named(hostile, student, path, why):
    result = _result(hostile, student)
    assert path in result.refused
    assert why in result.reason and path in result.reason, result.reason
    # the rest of the submission is graded as usual: the correct notebook beside it scores in full
    assert result.total == CORRECT_TOTAL, (student, result.status, result.reason)
    assert hostile["done"].needs_attention


@pytest.mark.parametrize("student, why", [
    ("pipe_notebook", "named pipe"),
    ("link_notebook", "link"),
    ("notebook_is_a_folder", "folder"),
])
def test_a_notebook_that_is_not_a_regular_file_is_an_invalid_submission_with_the_reason(hostile, student, why):
    result = _result(hostile, student)
    assert result.status == INVALID and why in result.reason and NOTEBOOK in result.reason, result.reason
    assert result.awaiting_manual_grade


def test_student_folders_with_unusable_names_or_links_are_left_out_and_named(hostile):
    graded = set(hostile["done"].results)
    assert "alias_of_another" not in graded
    assert not any("\x1b" in s or "\udcff" in s for s in graded)
    misplaced = dict(hostile["done"].misplaced)
    assert "not valid UTF-8" in misplaced[f"submitted/student-\\xff/{rnn_course.ASSIGNMENT}"]
    assert "control characters" in misplaced[f"submitted/control\\x1b[2Jchars/{rnn_course.ASSIGNMENT}"]
    assert "link" in misplaced[f"submitted/alias_of_another/{rnn_course.ASSIGNMENT}"]


def test_a_timestamp_that_is_not_a_date_grades_without_one_and_says_so(hostile):
    result = _result(hostile, "timestamp_garbage")
    assert result.timestamp is None and "no late penalty" in result.reason


def test_nothing_of_the_master_or_the_gradebook_reaches_any_output(hostile):
    course_dir = hostile["course_dir"]
    master = (course_dir / "source" / rnn_course.ASSIGNMENT / NOTEBOOK).read_bytes()
    for folder in ("autograded", "feedback"):
        for path in (course_dir / folder).rglob("*"):
            if path.is_symlink():
                pytest.fail(f"a link in the outputs: {path}")
            if path.is_file():
                data = path.read_bytes()
                # autograded/ holds the tests with their hidden part, as stock nbgrader's does; never a solution
                assert b"BEGIN SOLUTION" not in data, path
                assert folder == "autograded" or b"BEGIN HIDDEN TESTS" not in data, path
                assert not data.startswith(b"SQLite format 3"), path
                assert data != master, path
    for student in ("secret_link", "secret_binary", "timestamp_link"):
        secret = (course_dir / "feedback" / student / rnn_course.ASSIGNMENT / "submission_secret.txt").read_text()
        assert secret.isalnum() and len(secret) == 64, "a new secret where the student's was not a plain token"
    assert {p: p.read_bytes() for p in hostile["before"]} == hostile["before"], "source/ changed"


def test_copies_of_a_test_cell_count_once_as_in_the_gradebook(hostile):
    result = _result(hostile, "duplicated_tests")
    assert result.total == 25 and [t.grade_id for t in result.tests].count("test_rnn_cell_forward") == 1
    assert "duplicate cell id" in result.reason


def test_a_notebook_of_too_many_cells_is_refused_before_any_work(hostile):
    result = _result(hostile, "cell_flood")
    assert result.status == INVALID and f"cells with code to run, over the {grading.MAX_CELLS} the grader runs" \
        in result.reason


@pytest.mark.parametrize("student", ["honest_empty_cells", "honest_saved_outputs"])
def test_an_honest_notebook_is_graded_whatever_its_size_on_disk(hostile, student):
    """10,000 cells with nothing to run, and 200 MB of saved outputs (read as a stream, outputs left out): only
    what the grader would really run or hold counts against its caps."""
    path = hostile["course_dir"] / "submitted" / student / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.ipynb"
    assert student != "honest_saved_outputs" or path.stat().st_size > 200 * 10 ** 6
    result = _result(hostile, student)
    assert result.status == GRADED and result.total == CORRECT_TOTAL, result.reason


def test_half_a_character_from_the_students_process_stops_nothing(hostile):
    result = _result(hostile, "half_a_character")
    assert result.status != GRADED and "runner failed: boom \ufffd" in result.reason, result.reason
    assert hostile["report"].is_file() and "half_a_character" in hostile["report"].read_text()
    page = rnn(hostile["course_dir"]).feedback("half_a_character") / NOTEBOOK.replace(".ipynb", ".html")
    assert page.is_file()


def test_a_cell_claiming_to_be_a_test_without_an_id_is_no_test(hostile):
    result = _result(hostile, "null_grade_id")
    assert result.total == WRONG_TOTAL and all(t.grade_id for t in result.tests)


def test_text_shaped_against_the_graders_patterns_costs_linear_time(hostile):
    """300,000 blank lines and 100,000 unclosed hidden-test markers: hours for a backtracking pattern,
    outside the sandbox's limits; the whole batch here takes seconds."""
    assert _result(hostile, "slow_patterns").total == CORRECT_TOTAL
    assert hostile["seconds"] < 180


def test_student_text_reaches_the_terminal_without_control_characters(hostile):
    table = hostile["table"]
    assert "\x1b" not in table and "\udcff" not in table


def test_a_link_swapped_in_while_the_folder_is_read_is_never_followed(tmp_path):
    """The race: a file that is regular when listed becomes a link to the master before it is opened.
    Thousands of swaps while the grader reads the folder: the master's bytes are never read."""
    course_dir = make_course_copy(tmp_path / "course")
    folder = Path(os.fsdecode(_folder(course_dir, "racer")))
    master = course_dir / "source" / rnn_course.ASSIGNMENT / NOTEBOOK
    regular, link = folder / "regular.tmp", folder / "link.tmp"
    target = folder / "swapped.ipynb"
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            regular.write_text("my own notes")
            os.replace(regular, target)
            os.symlink(master, link)
            os.replace(link, target)
    thread = threading.Thread(target=swap)
    thread.start()
    try:
        reads, swapped = 0, 0
        deadline = time.monotonic() + 20
        while (reads < 3000 or swapped < 50) and time.monotonic() < deadline:
            submission = batch.read_submission(rnn(course_dir), "racer")
            files = dict(submission.files)
            assert files.get("swapped.ipynb", b"my own notes") == b"my own notes"
            assert master.read_bytes() not in files.values()
            swapped += any(path == "swapped.ipynb" for path, _ in submission.refused)
            reads += 1
    finally:
        stop.set()
        thread.join()
    assert swapped, "the swap was never seen: the race was not exercised"


def test_any_failure_on_one_students_data_stays_with_that_student(tmp_path, monkeypatch):
    """Faults injected into every step that handles one student's data in the grader's own process:
    reading the folder, writing the gradebook, writing autograded/, writing the feedback page. Each
    fault becomes that student's status or note; the batch, the CSV, the report and everyone else's
    pages complete."""
    from grader.course import gradebook
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    for student in ("honest_correct", "unreadable", "no_gradebook", "no_folder", "no_page"):
        samples.write(samples.fill(samples.master_solutions()), course_dir, student)

    real_read, real_write, real_outputs = batch.read_submission, gradebook.Writer.write, batch._write_outputs
    real_page = publish.write_feedback

    def read(course_dir, student):
        if student == "unreadable":
            raise OSError(5, "Input/output error")
        return real_read(course_dir, student)

    def write(self, result):
        if result.student == "no_gradebook" and result.status == GRADED:
            raise ValueError("the gradebook refused this row")
        return real_write(self, result)

    def outputs(course_dir, assignment, submission, result):
        if submission.student == "no_folder":
            raise OSError(28, "No space left on device")
        return real_outputs(course_dir, assignment, submission, result)

    def page(course_dir, result, assignment):
        if result.student == "no_page":
            raise OSError(13, "Permission denied")
        return real_page(course_dir, result, assignment)

    monkeypatch.setattr(batch, "read_submission", read)
    monkeypatch.setattr(gradebook.Writer, "write", write)
    monkeypatch.setattr(batch, "_write_outputs", outputs)
    monkeypatch.setattr(publish, "write_feedback", page)
    done = batch.grade_batch(rnn(course_dir), limits=DEMO_LIMITS)
    assignment = done.spec
    published = publish.publish(rnn(course_dir), assignment)

    results = done.results
    assert results["honest_correct"].total == CORRECT_TOTAL and results["no_page"].total == CORRECT_TOTAL
    assert results["unreadable"].status == MISSING and "Input/output error" in results["unreadable"].reason
    assert results["no_gradebook"].status == "grader error" and "refused this row" in results["no_gradebook"].reason
    assert results["no_folder"].status == "grader error" and "No space left" in results["no_folder"].reason
    assert "Permission denied" in published.unwritten["no_page"] and len(published.unwritten) == 1
    assert published.csv.is_file() and published.report.is_file()
    assert (rnn(course_dir).feedback("honest_correct") / f"{rnn_course.NOTEBOOK}.html").is_file()
    # the gradebook holds the grader errors as waiting for a person, not as zeros
    scores = rnn_scores(course_dir)
    assert sum(scores["honest_correct"].values()) == CORRECT_TOTAL
    assert all(score is None for score in scores["no_gradebook"].values())


def test_a_notebook_over_the_file_cap_nested_without_end_is_refused_without_the_memory_it_asks_for(tmp_path):
    """A notebook over 32 MB is read as a stream; nesting 300,000 deep (which a parser that names each value's
    path would make quadratic) is refused, and nesting inside the saved outputs is passed over."""
    import resource
    folder = tmp_path / "deep"
    folder.mkdir()
    pad = "y" * (33 * 2 ** 20)
    (folder / "outside.ipynb").write_text('{"cells": [], "metadata": {"x": ' + "[" * 300_000 + "]" * 300_000
                                          + f'}}, "pad": "{pad}"}}')
    found = student_files.read_folder(folder)
    assert found.refused == [("outside.ipynb", f"it is nested over {student_files.MAX_NOTEBOOK_DEPTH} deep")]
    (folder / "outside.ipynb").unlink()
    cell = '{"id": "a1", "cell_type": "code", "source": "x = 1", "metadata": {}, "execution_count": null, "outputs": ['
    (folder / "inside.ipynb").write_text('{"cells": [' + cell + "[" * 300_000 + "]" * 300_000 + f', "{pad}"]}}], '
                                         '"metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    found = student_files.read_folder(folder)
    assert found.refused == [] and nbformat.reads(found.files[0][1].decode(), 4).cells[0].outputs == []
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300 * 1024, "kB: no quadratic paths"


def test_a_streamed_notebook_whose_text_grows_when_written_back_is_refused_not_a_crash(tmp_path):
    """The stream counts characters; written back as UTF-8 a character may take up to 4 bytes, and a control
    character 6 (as JSON writes it). A notebook of 11 million such characters is 64 MB written back, over what
    the grader holds for one file: refused with the reason, and the folder's other files still read."""
    folder = tmp_path / "wide"
    folder.mkdir()
    source = "\u0001" * (11 * 2 ** 20)
    nb = {"cells": [{"id": "a1", "cell_type": "code", "source": source, "metadata": {}, "execution_count": None,
                     "outputs": []}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / "wide.ipynb").write_text(json.dumps(nb, ensure_ascii=False))
    (folder / "helper.py").write_text("x = 1\n")
    found = student_files.read_folder(folder, first=["wide.ipynb"])
    assert found.refused == [("wide.ipynb", "its code and text, outputs left out, are over "
                                            f"{student_files.size_in_words(student_files.MAX_FILE_BYTES)}")]
    assert found.files == [("helper.py", b"x = 1\n")]
