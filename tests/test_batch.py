"""The batch grader end to end, on real course copies, with a real SQLite gradebook."""
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import DEMO_LIMITS, ROOT, SAMPLES, make_course_copy, rnn, rnn_scores, write_samples
from grader.core import plain_text
from grader.course import release
from grader.grade import batch
import rnn_course
from rnn_course import samples
from grader.core.errors import KitError
from grader.course import coursedir
from grader.run.execute import Limits

def grade(course_dir, *args):
    return subprocess.run([sys.executable, "-m", "grader", "--course-dir", str(course_dir), "grade", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def read_csv(course_dir):
    with open(course_dir / "autograded" / "rnn_step_by_step_grades.csv") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def test_every_sample_ends_with_the_right_status_and_scores(samples_course):
    rows = read_csv(samples_course)
    expected = {"sample_correct": ("graded", "100", "20"), "sample_partial": ("graded", "50", "0"),
                "sample_blank": ("graded", "0", "0"), "sample_warning": ("graded", "100", "20"),
                "sample_broken": ("invalid notebook (awaiting a manual grade: 120 points)", "", ""),
                "sample_tampered": ("test cells restored", "100", "20"),
                "sample_duplicate": ("graded", "100", "20"), "sample_endless": ("timed out", "100", "10")}
    for student, (status, graded, optional) in expected.items():
        row = rows[student]
        assert (row["status"], row["graded"], row["optional"]) == (status, graded, optional), row
    assert "not valid JSON" in rows["sample_broken"]["reason"]
    assert "test_rnn_forward" in rows["sample_tampered"]["reason"]
    assert "duplicate cell id" in rows["sample_duplicate"]["reason"]
    assert rows["sample_endless"]["lstm_cell_backward"] == "5", "a loop elsewhere must not cost this test"


def test_gradebook_holds_the_same_scores_as_the_csv(samples_course):
    scores = rnn_scores(samples_course)
    rows = read_csv(samples_course)
    for student, per_test in scores.items():
        for grade_id, score in per_test.items():
            function = grade_id.removeprefix("test_")
            if rows[student]["status"].startswith("invalid notebook"):
                assert score is None and rows[student][function] == ""  # left for a person, not zero
            else:
                assert float(rows[student][function]) == score


def test_nbgrader_export_reads_the_kit_gradebook(samples_course, tmp_path):
    out = tmp_path / "export.csv"
    result = subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--to={out}"], cwd=samples_course,
                            capture_output=True, text=True,
                            env=dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"))
    assert result.returncode == 0, result.stderr
    with open(out) as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert float(rows["sample_correct"]["raw_score"]) == 120
    assert float(rows["sample_partial"]["raw_score"]) == 50


def test_a_second_run_grades_nothing_and_a_changed_submission_is_regraded(samples_course):
    before = batch.stored_result(rnn(samples_course), "sample_correct").graded_at
    done = batch.grade_batch(rnn(samples_course), limits=DEMO_LIMITS)
    assert done.graded == [] and len(done.unchanged) == len(SAMPLES)
    correct = samples.master_solutions()
    samples.write(samples.fill({k: correct[k] for k in ("rnn_cell_forward",)}), samples_course,
                      "sample_partial")
    done = batch.grade_batch(rnn(samples_course), limits=DEMO_LIMITS)
    assert done.graded == ["sample_partial"]
    assert done.results["sample_partial"].part("graded") == 25
    assert batch.stored_result(rnn(samples_course), "sample_correct").graded_at == before


def test_feedback_pages_never_show_hidden_tests(samples_course):
    from grader.grade.batch import load_assignment
    hidden = load_assignment(rnn(samples_course)).hidden_lines()
    assert len(hidden) > 50
    for student in SAMPLES:
        page = (samples_course / "feedback" / student / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.html").read_text()
        leaked = [line for line in hidden if line in page]
        assert not leaked, f"{student}: {leaked[:3]}"
        assert "Traceback" not in page


def test_manual_grades_and_comments_survive_a_forced_regrade(samples_course):
    from nbgrader.api import Gradebook
    course = coursedir.course_directory(samples_course)
    with Gradebook(course.db_url, course.course_id) as gb:
        nb = gb.find_submission_notebook(rnn_course.NOTEBOOK, rnn_course.ASSIGNMENT, "sample_partial")
        grade = next(g for g in nb.grades if g.name == "test_lstm_forward")
        grade.manual_score = 10
        comment = next(c for c in nb.comments if c.name == "lstm_forward")
        comment.manual_comment = "Good try: see the cell state."
        gb.db.commit()
    done = batch.grade_batch(rnn(samples_course), ["sample_partial"], force=True, limits=DEMO_LIMITS)
    assert done.graded == ["sample_partial"]
    with Gradebook(course.db_url, course.course_id) as gb:
        nb = gb.find_submission_notebook(rnn_course.NOTEBOOK, rnn_course.ASSIGNMENT, "sample_partial")
        grade = next(g for g in nb.grades if g.name == "test_lstm_forward")
        assert (grade.manual_score, grade.auto_score, grade.needs_manual_grade) == (10, 0, True)
        assert next(c for c in nb.comments if c.name == "lstm_forward").manual_comment.startswith("Good try")


def test_limits_that_fail_the_masters_solution_stop_the_batch_before_any_student(samples_course):
    before = batch.stored_result(rnn(samples_course), "sample_correct")
    with pytest.raises(KitError, match="master's own answers scored nothing"):
        batch.grade_batch(rnn(samples_course), ["sample_correct"], force=True,
                          limits=Limits(cell_timeout=0.001, notebook_budget=0.5))
    assert batch.stored_result(rnn(samples_course), "sample_correct").graded_at == before.graded_at


def test_a_forced_regrade_that_fails_keeps_the_previous_result(samples_course, monkeypatch):
    before = batch.stored_result(rnn(samples_course), "sample_correct")
    # A machine so slow that every cell times out: the regrade fails, the old result stays. (The canary
    # would stop such a batch first; this checks the writer's own rule behind it.)
    monkeypatch.setattr(batch, "run_canary", lambda layout, assignment: (assignment, []))
    done = batch.grade_batch(rnn(samples_course), ["sample_correct"], force=True,
                             limits=Limits(cell_timeout=0.001, notebook_budget=0.5))
    assert "sample_correct" in done.kept and done.needs_attention
    after = batch.stored_result(rnn(samples_course), "sample_correct")
    assert after.graded_at == before.graded_at and after.total == 120
    assert rnn_scores(samples_course)["sample_correct"]["test_rnn_forward"] == 25


def test_class_report_has_its_charts_inline(samples_course):
    page = (samples_course / "autograded" / "rnn_step_by_step_report.html").read_text()
    assert page.count("<svg") == 3 and "Pass rate per test" in page
    assert "sample_broken" in page  # listed under "needs your attention"


def test_killed_batch_is_finished_by_the_next_run(tmp_path):
    """SIGKILL the grader midway: no student is left at zero, and the next run grades the rest."""
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    correct = samples.master_solutions()
    for i in range(16):
        samples.write(samples.fill(correct), course_dir, f"student{i:02d}")
    process = subprocess.Popen([sys.executable, "-m", "grader", "--course-dir", str(course_dir), "grade",
                                "--jobs", "1"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = [s for s in batch.submitted_students(rnn(course_dir)) if batch.stored_result(rnn(course_dir), s)]
        if len(done) >= 2:
            break
        time.sleep(0.05)
    # multiprocessing's folder for the fork servers' sockets is inside a scratch folder of the kit's: removed by
    # the next run, as the others are (a SIGKILL leaves multiprocessing no time to remove it).
    assert list(Path(tempfile.gettempdir()).glob(f"trusted-grader-mp-{process.pid}-*/pymp-*/listener-*"))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = [s for s in batch.submitted_students(rnn(course_dir)) if batch.stored_result(rnn(course_dir), s)]
    assert 2 <= len(done) < 16, "the kill should land midway"
    result = grade(course_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_csv(course_dir)
    assert all(r["status"] == "graded" and r["score"] == "120" for r in rows.values())
    assert not list(Path(tempfile.gettempdir()).glob(f"trusted-grader-*-{process.pid}-*")), "the killed run's scratch"
    assert f"{rnn_course.ASSIGNMENT}: graded {plain_text.counted(16 - len(done), 'submission')}" in result.stdout
    assert all(v["test_lstm_backward"] == 5 for v in rnn_scores(course_dir).values())


def test_grade_flags_are_checked(tmp_path):
    result = grade(ROOT, "--cell-timeout", "-1")
    assert result.returncode == 2 and "--cell-timeout must be positive" in result.stderr
    result = grade(ROOT, "--student", "nobody_at_all")
    assert result.returncode == 2 and "no submission of rnn_step_by_step for nobody_at_all" in result.stderr
    result = grade(ROOT, "nobody_at_all")  # an assignment's name where a student's was meant
    assert result.returncode == 2 and "no assignment called 'nobody_at_all'" in result.stderr
    assert "its assignments: rnn_step_by_step" in result.stderr


def test_missing_gradebook_assignment_says_to_release_first(tmp_path):
    course_dir = make_course_copy(tmp_path / "course")
    write_samples(course_dir, ["sample_correct"])
    result = grade(course_dir)
    assert result.returncode == 2 and "-m grader --course-dir" in result.stderr
    assert " release rnn_step_by_step`" in result.stderr


@pytest.fixture
def dask_cluster(tmp_path):
    """Two `dask worker` processes and a `dask scheduler`, started with Dask's own commands (the benchmark's)."""
    from grader_eval import benchmark
    with benchmark.dask_cluster(2, tmp_path) as started:
        yield started


def _hold(data):
    time.sleep(60)


def test_a_pool_stopped_while_it_sends_a_worker_a_large_submission_stops_at_once():
    """Ctrl-C stops the grading workers (interrupts.end_pool) while the pool may be halfway through sending one of
    them a submission larger than a pipe holds: the pool's end then waited for ever for a reader to take the rest
    (on Debian 12's Python 3.11.2, the 6 s Ctrl-C test hung there)."""
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor
    from grader.core import interrupts
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    for _ in range(3):  # the worker takes the first and holds it; the second fills the pipe and waits
        pool.submit(_hold, b"x" * (4 << 20))
    time.sleep(1)
    ended = threading.Thread(target=interrupts.end_pool, args=(pool,), daemon=True)
    ended.start()
    ended.join(30)
    assert not ended.is_alive(), "the pool's end waits for a reader that is gone"


def test_grading_on_a_dask_cluster_gives_the_pools_results_and_survives_a_worker_dying(samples_course, tmp_path,
                                                                                        dask_cluster):
    """`grade --scheduler` on a cluster of separate processes grades the samples as the local pool does, each
    submission sandboxed on a worker; a worker killed midway loses nothing: the batch finishes on the other."""
    address, workers = dask_cluster
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    write_samples(course_dir)
    correct = samples.master_solutions()
    extra = [f"student{i:02d}" for i in range(10)]
    for student in extra:
        samples.write(samples.fill(correct), course_dir, student)
    process = subprocess.Popen([sys.executable, "-m", "grader", "--course-dir", str(course_dir), "grade",
                                "--scheduler", address, "--cell-timeout", "5"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if any(batch.stored_result(rnn(course_dir), s) for s in extra + list(SAMPLES)):
            break
        time.sleep(0.05)
    os.killpg(workers[0].pid, signal.SIGKILL)  # mid-batch: the first results are in, most are not
    done_before = [s for s in extra + list(SAMPLES) if batch.stored_result(rnn(course_dir), s)]
    out, _ = process.communicate(timeout=600)
    assert 1 <= len(done_before) < 10 + len(SAMPLES), "the kill should land midway"
    assert f"graded {10 + len(SAMPLES)} submissions" in out, out
    results = {s: batch.stored_result(rnn(course_dir), s) for s in extra + list(SAMPLES)}
    assert all(r is not None for r in results.values()), out
    local = {s: batch.stored_result(rnn(samples_course), s) for s in SAMPLES}
    for student in SAMPLES:
        if student == "sample_partial":
            continue  # changed by an earlier test in this module
        assert results[student].status == local[student].status, student
        assert [(t.grade_id, t.score) for t in results[student].tests] == \
            [(t.grade_id, t.score) for t in local[student].tests], student
        assert results[student].confined, "sandboxed on the worker"
    assert all(results[s].status == "graded" and results[s].total == 120 for s in extra), out


def test_result_record_is_written_last(samples_course):
    folder = rnn(samples_course).autograded("sample_correct")
    record = json.loads((folder / batch.RESULT_FILE).read_text())
    assert record["status"] == "graded" and (folder / f"{rnn_course.NOTEBOOK}.ipynb").exists()
    assert not list(folder.parent.glob(".*.new")) and not list(folder.glob("*.part"))


def test_benchmark_script_compares_both_graders_on_a_small_batch(tmp_path, capsys):
    """The benchmark's machinery on 5 submissions (one endless loop, one broken file)."""
    from grader_eval import benchmark
    code = benchmark.main(ROOT, rnn_course.ASSIGNMENT, workdir=tmp_path / "bench", cell_timeout=2, idle_repeats=1,
                          made=samples.benchmark_class(5))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "per-test scores identical on 4 of 4 submissions" in out
    assert "broken notebooks reported as invalid by the kit: 1 of 1" in out
    assert "ratio (stock / sandboxed):" in out and "confinement costs" in out
    # Where the time went, stage by stage, measured: every stage a grading passes through took some time.
    assert "Where the kit's time went" in out
    for stage in ("sandbox start", "cells run", "outside replay", "gradebook write", "pages", "copy report"):
        line = next(line for line in out.splitlines() if line.strip().startswith(stage))
        assert float(line.split()[-1]) > 0, line


def test_the_kit_alone_on_two_class_sizes_reports_time_memory_and_the_copy_report_again(tmp_path, capsys):
    """`benchmark --kit-only`: a class of `base`, then of n; per submission, every process's peak, the stages."""
    import json
    from grader_eval import benchmark
    code = benchmark.kit_only(ROOT, rnn_course.ASSIGNMENT, n=8, base=5, make_class=samples.benchmark_class,
                              docs=tmp_path, cell_timeout=2)
    out = capsys.readouterr().out
    assert code == 0, out
    measured = json.loads((tmp_path / f"benchmark_{rnn_course.ASSIGNMENT}_kit_only.json").read_text())
    assert [run["n"] for run in measured["runs"]] == [5, 8] and measured["per_submission_ratio"] > 0
    for run in measured["runs"]:
        roles = {name.rsplit(" ", 1)[0] for name in run["peaks_mb"]}
        assert {"grader", "fork server", "worker", "worker's fork server"} <= roles, run["peaks_mb"]
        assert 50 < run["largest_process_mb"] < 2000 and run["copy_report_again_seconds"] < 30
    assert "a second copy report with nothing changed" in out and "Where the kit's time went" in out


def test_unreachable_dask_scheduler_is_named_with_the_fix(samples_course):
    result = grade(samples_course, "--force", "--scheduler", "tcp://127.0.0.1:9")
    assert result.returncode == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.stderr
    assert batch.stored_result(rnn(samples_course), "sample_correct").total == 120, "earlier results are kept"


def test_each_batch_that_writes_backs_up_the_gradebook_first_and_keeps_the_last_few(samples_course):
    import sqlite3
    from grader.course import gradebook
    folder = samples_course / gradebook.BACKUPS
    before = set(folder.glob("*.db")) if folder.exists() else set()
    batch.grade_batch(rnn(samples_course), ["sample_blank"], force=True, limits=DEMO_LIMITS)
    made = set(folder.glob("*.db")) - before
    assert len(made) == 1
    rows = sqlite3.connect(made.pop()).execute("select count(*) from submitted_assignment").fetchone()[0]
    assert rows > 0  # a whole, readable copy of the gradebook as it was
    for _ in range(gradebook.KEEP_BACKUPS + 1):
        gradebook.backup(samples_course)
    assert len(list(folder.glob("*.db"))) == gradebook.KEEP_BACKUPS


def test_a_syntax_error_reaches_the_student_as_itself_not_as_a_name_error(tmp_path):
    """A solution cell that does not compile defines nothing: its test fails with NameError. The student's
    page names the cell, the error and its line, so the real cause is where the student looks."""
    from grader.report import publish
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    answers = samples.master_solutions()
    answers["rnn_forward"] = answers["rnn_forward"].replace("for t in range(T_x):", "for t in range(T_x)", 1)
    samples.write(samples.fill(answers), course_dir, "forgot_a_colon")
    done = batch.grade_batch(rnn(course_dir), limits=DEMO_LIMITS)
    assignment = done.spec
    result = done.results["forgot_a_colon"]
    scores = {t.grade_id: t.score for t in result.tests}
    assert scores["test_rnn_forward"] == 0 and scores["test_rnn_cell_forward"] == 25
    assert "rnn_forward raised SyntaxError on line" in result.reason
    publish.publish(rnn(course_dir), assignment)
    page = (rnn(course_dir).feedback("forgot_a_colon") / f"{rnn_course.NOTEBOOK}.html").read_text()
    assert "Your cell defining rnn_forward() stopped with SyntaxError on line" in page and "ipython-input" not in page
    message = next(t.message for t in result.tests if t.grade_id == "test_rnn_forward")
    assert "because your cell defining rnn_forward() stopped with an error before defining it" in message, message


def test_remove_students_takes_out_only_the_named_students_and_refuses_a_path(samples_course, tmp_path):
    import shutil

    from grader.app import removal

    course_dir = tmp_path / "course"
    shutil.copytree(samples_course, course_dir)
    with pytest.raises(KitError, match="not a student id"):
        removal.check_names(["../gradebook.db"])
    before = rnn_scores(course_dir)
    done = removal.remove_students(course_dir, ["sample_blank"])
    assert done.students == ["sample_blank"] and done.backup.is_file()
    after = rnn_scores(course_dir)
    assert "sample_blank" not in after and after == {s: v for s, v in before.items() if s != "sample_blank"}
    assert not (course_dir / "submitted" / "sample_blank").exists()
    assert not (course_dir / "autograded" / "sample_blank").exists()
    assert (course_dir / "submitted" / "sample_correct").is_dir()


def test_the_benchmarks_breakdown_gives_each_stage_per_submission_and_the_run_once():
    from grader.judge import grading
    from grader_eval import benchmark

    timings = {"submissions": 4, "cells run": 2.0, "gradebook write": 0.2, "pages": 1.5, "copy report": 0.5,
               batch.BATCH_STAGES[0]: 3.0}
    stages = benchmark.breakdown(timings)
    assert stages["per submission, in a worker (ms)"]["cells run"] == 500.0
    assert set(stages["per submission, in a worker (ms)"]) == set(grading.STAGES)
    assert stages["per submission, in the collecting process (ms)"]["gradebook write"] == 50.0
    assert stages["once per run (s)"] == {batch.BATCH_STAGES[0]: 3.0, "pages": 1.5, "copy report": 0.5}
    lines = benchmark.breakdown_lines(stages)
    assert lines[0].startswith("Where the kit's time went") and any("cells run" in line for line in lines)


class Phases:
    """A progress that keeps the phases a batch announces (core.progress.Progress), and shows no bar."""

    def __init__(self):
        self.said = []

    def __call__(self, total):
        return self

    def phase(self, text):
        self.said.append(text)

    def update(self, student, status):
        pass

    def close(self):
        pass


def test_a_clean_set_up_is_kept_for_the_next_command_until_anything_it_depends_on_changes(tmp_path, monkeypatch):
    """The master's recorded answers and the canary's verdict are made once; the next command reuses them, with
    the same grades, until the master changes; a damaged kept file is made again, and a set-up that needed a
    note is not kept."""
    from grader.grade import setup_cache
    kept = tmp_path / "setups"
    monkeypatch.setenv(setup_cache.ENVIRONMENT, str(kept))
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    write_samples(course_dir, ["sample_correct", "sample_partial"])

    def graded():
        phases = Phases()
        done = batch.grade_batch(rnn(course_dir), force=True, limits=DEMO_LIMITS, progress=phases)
        recorded = any("setting up" in line for line in phases.said)
        return recorded, {s: r.total for s, r in done.results.items()}, sorted(p.name for p in kept.iterdir())

    recorded, first, files = graded()
    assert recorded and len(files) == 1 and first == {"sample_correct": 120, "sample_partial": 50}
    recorded, again, _ = graded()
    assert not recorded and again == first

    (kept / files[0]).write_bytes(b"not a set-up")
    recorded, again, now = graded()
    assert recorded and again == first and now == files  # made again, and replaced

    master = rnn(course_dir).master(rnn_course.NOTEBOOK)
    nb = json.loads(master.read_text())
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "One more line.", "id": "extra-line"})
    master.write_text(json.dumps(nb))
    recorded, again, now = graded()
    assert recorded and again == first and len(now) == 2  # the master changed: set up again, beside the old

    before = sorted(kept.iterdir())
    monkeypatch.setattr(batch, "run_canary", lambda layout, spec: (spec, ["the master loses a point"]))
    done = batch.grade_batch(rnn(course_dir), ["sample_correct"], force=True,
                             limits=Limits(cell_timeout=7, notebook_budget=20))  # other limits: set up again
    assert "the master loses a point" in done.notes and sorted(kept.iterdir()) == before  # with a note: not kept


def test_no_set_up_is_kept_where_a_sandbox_could_read_the_masters_answers(tmp_path, monkeypatch):
    import shutil
    from grader.grade import setup_cache
    inside = Path(sys.prefix) / f"trusted-grader-setups-test-{os.getpid()}"  # the environment: sandboxes read it
    monkeypatch.setenv(setup_cache.ENVIRONMENT, str(inside))
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    spec = batch.load_assignment(rnn(course_dir))
    try:
        setup_cache.save("k" * 32, spec)
        assert not inside.exists() and setup_cache.load("k" * 32, str(tmp_path)) is None
    finally:
        shutil.rmtree(inside, ignore_errors=True)
    monkeypatch.setenv(setup_cache.ENVIRONMENT, str(tmp_path / "private"))
    setup_cache.save("k" * 32, spec)
    assert setup_cache.load("k" * 32, str(tmp_path)) == spec.replace(helpers=str(tmp_path))
