import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import rnn_course  # noqa: E402
from grader import cli
from grader.core import scratch
from grader.core.limits import Limits  # noqa: E402
from grader.course import assignments, release
from grader.grade import setup_cache
from grader_eval import stock  # noqa: E402
from rnn_course import samples  # noqa: E402

SAMPLES = samples.sample_submissions()
# An instructor's secret in the environment of every grading process the tests start: no
# sandboxed process may see it (tests/test_trusted.py looks for it in their outputs).
INSTRUCTOR_SECRET = "instructor-secret-4711"
os.environ["RNN_KIT_TEST_SECRET"] = INSTRUCTOR_SECRET
# Every Python process the tests start loads tests/site/sitecustomize.py (why: see there).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests" / "site"), os.environ.get("PYTHONPATH")]))
DEMO_LIMITS = Limits(cell_timeout=5, notebook_budget=10)


def rnn(course_dir):
    """Where the RNN assignment's files are in the course directory `course_dir`."""
    return assignments.Layout(Path(course_dir), rnn_course.ASSIGNMENT)


def rnn_scores(course_dir):
    """student -> {test grade_id: auto score} of the RNN assignment in `course_dir`'s gradebook (one notebook)."""
    return {student: {grade_id: score for (_, grade_id), score in scores.items()}
            for student, scores in stock.scores(course_dir, rnn_course.ASSIGNMENT).items()}


def write_samples(course_dir, names=None):
    for student, (_, nb) in SAMPLES.items():
        if names is None or student in names:
            samples.write(nb, course_dir, student)


def kit(course_dir, *args):
    """The engine's command line on `course_dir`, as an instructor runs it; the finished process."""
    return subprocess.run([sys.executable, "-m", "grader", "--course-dir", str(course_dir), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def make_course_copy(target):
    """A course directory like this repository's (config, source, release) in `target`."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", target / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", target / "source", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "release", target / "release", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def run_folder(tmp_path_factory):
    """This test run's own folder, shared by its pytest-xdist workers (pytest-N/, above each worker's popen-gwK/);
    without xdist, the run's base folder itself."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


def built_once(tmp_path_factory, name, build):
    """A copy, this worker's own (the tests change it), of the course folder that `build(folder)` makes once per
    test run: the first worker to need it builds it while the others wait for it."""
    shared = run_folder(tmp_path_factory) / f"built-{name}"
    with open(shared.with_name(shared.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / ".built").exists():
            shutil.rmtree(shared, ignore_errors=True)
            build(shared)
            (shared / ".built").touch()
    own = tmp_path_factory.mktemp(name)
    shutil.copytree(shared, own, dirs_exist_ok=True, symlinks=True, ignore=shutil.ignore_patterns(".built"))
    return own


def _released(course_dir):
    make_course_copy(course_dir)
    release.generate(course_dir, rnn_course.ASSIGNMENT)


def _samples_graded(course_dir):
    _released(course_dir)
    write_samples(course_dir)
    code = cli.grade_and_report(course_dir, limits=DEMO_LIMITS)
    assert code == cli.NEEDS_ATTENTION  # the broken samples need attention


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """A course copy whose release was regenerated there (so its gradebook knows the assignment)."""
    return built_once(tmp_path_factory, "course", _released)


@pytest.fixture(scope="session")
def samples_course(tmp_path_factory):
    """The demo's samples graded by the kit, once per test run (in-process, so the fixture is quick to reuse)."""
    return built_once(tmp_path_factory, "samples", _samples_graded)


# `make test-fast` (pytest -m "not slow") leaves these out: each takes seconds (measured on a 2-core machine, the
# fixtures it alone needs included). Whole modules whose fixture grades a class, then single tests elsewhere.
SLOW_MODULES = {"test_any_assignment", "test_autograde", "test_conformance", "test_formgrader",
                "test_hidden_stays_hidden", "test_hostile_files", "test_hostile_resources", "test_trusted"}
SLOW_TESTS = {
    "test_nbgrader_autograde_gives_every_submission_the_kits_scores",
    "test_a_forged_pass_scores_what_it_earned_and_is_flagged_where_formgrader_shows_it",
    "test_generate_feedback_writes_the_kits_pages_and_nothing_hidden",
    "test_without_the_kit_nbgrader_refuses_in_one_line_and_grades_nothing",
    "test_a_multi_notebook_assignment_graded_partly_by_hand_gets_the_kits_scores",
    "test_benchmark_script_compares_both_graders_on_a_small_batch",
    "test_grading_on_a_dask_cluster_gives_the_pools_results_and_survives_a_worker_dying",
    "test_killed_batch_is_finished_by_the_next_run",
    "test_the_kit_alone_on_two_class_sizes_reports_time_memory_and_the_copy_report_again",
    "test_unreachable_dask_scheduler_is_named_with_the_fix",
    "test_a_syntax_error_reaches_the_student_as_itself_not_as_a_name_error",
    "test_a_damaged_cut_or_foreign_gradebook_gets_a_message_and_exit_2_and_is_left_as_it_was",
    "test_ctrl_c_at_any_moment_gives_a_short_message_exit_130_and_leaves_nothing",
    "test_demo_grades_the_samples_and_reports_the_broken_one",
    "test_a_release_that_would_change_graded_cells_is_refused_and_the_old_release_kept",
    "test_grade_writes_the_copy_report_with_the_copier_first_and_known_solutions_apart",
    "test_a_second_report_reads_only_what_changed_and_stands_when_nothing_did",
    "test_a_due_date_or_late_policy_set_after_grading_applies_at_the_next_publish",
    "test_a_timestamp_in_the_file_name_applies_the_courses_late_penalty_as_stock_nbgrader",
    "test_misplaced_extra_and_empty_input_are_named_with_the_fix",
    "test_lms_ids_reach_the_gradebook_the_csv_and_canvas_import_file",
    "test_late_marks_are_kept_and_rejected_only_students_stay_out_of_the_gradebook",
    "test_a_students_html_and_script_stay_inert_in_formgrader",
    "test_feedback_reaches_students_through_nbgrader_release_and_fetch_feedback",
    "test_students_and_assignments_of_another_tool_in_the_gradebook_are_named_once",
    "test_make_demo_and_make_forget_demo_run_as_printed_in_a_copy_of_the_repository",
    "test_the_batch_grading_block_runs_as_printed",
    "test_the_quickstart_block_runs_as_printed",
    "test_an_archive_bomb_is_unpacked_in_flat_memory",
    "test_a_failing_check_shows_its_message_and_the_students_lines_not_the_checking_code",
}


# ...and every test that uses one of these module fixtures (each grades a class of its own).
SLOW_FIXTURES = {"hand_graded", "copied_course"}


# The costliest modules first (seconds of one test worker, measured on 2 cores): with `--dist loadfile` a worker
# takes the next file as it runs out, and one long file taken last leaves the other core idle at the end. The
# Makefile passes `--no-loadscope-reorder`: xdist would otherwise order files by their number of tests, which put
# the conformance test (5 tests, 100 s) last.
MODULES_BY_COST = ["test_batch", "test_any_assignment", "test_conformance", "test_cli", "test_nbgrader_engine",
                   "test_readme", "test_publish", "test_autograde", "test_intake", "test_hostile_files",
                   "test_hidden_stays_hidden", "test_trusted", "test_formgrader", "test_copies", "test_manual",
                   "test_hostile_resources", "test_release", "test_browser", "test_execute", "test_layout"]


def pytest_collection_modifyitems(items):
    rank = {name: place for place, name in enumerate(MODULES_BY_COST)}
    items[:] = sorted(items, key=lambda item: rank.get(item.module.__name__, len(rank)))  # stable: in-file order kept
    for item in items:
        if (item.module.__name__ in SLOW_MODULES or item.originalname in SLOW_TESTS
                or SLOW_FIXTURES & set(item.fixturenames)):
            item.add_marker(pytest.mark.slow)


def _started_here(pid):
    """True when `pid` is this test process or a process it started (still alive, so traceable)."""
    while pid > 1:
        if pid == os.getpid():
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def from_another_test_worker(pid):
    """True when `pid` descends from another pytest-xdist worker: a process started, as this one was, by the
    controller that is this process's parent."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return False
    controller, me = os.getppid(), os.getpid()
    while pid > 1:
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if parent == controller:
            return pid != me
        pid = parent
    return False


@pytest.fixture(scope="session", autouse=True)
def setups_shared_by_the_run(tmp_path_factory):
    """The set-ups `grade` keeps between commands (grader.grade.setup_cache), in one folder for this run's
    workers together, never the user's: every test sees what this run made, nothing of an earlier one. A test of
    the set-up itself points its command at an empty folder (fresh_setups)."""
    shared = run_folder(tmp_path_factory) / "setups"
    os.environ[setup_cache.ENVIRONMENT] = str(shared)


def fresh_setups(folder):
    """An environment for a command that sets up as on a machine that never graded: set-ups kept in `folder`."""
    return dict(os.environ, **{setup_cache.ENVIRONMENT: str(folder)})


@pytest.fixture(scope="session", autouse=True)
def no_scratch_left_behind():
    """The suite leaves none of the kit's scratch folders in the temporary folder (SIGKILLed graders
    included: the next run sweeps theirs, and so does this check at the end). Only this run's count:
    another grader or test run on the same machine keeps its own while it works."""
    folder = Path(tempfile.gettempdir())
    before = set(folder.glob(f"{scratch.SCRATCH}*"))
    yield
    scratch.sweep_scratch()
    left = [path for path in set(folder.glob(f"{scratch.SCRATCH}*")) - before
            if _started_here(scratch.scratch_owner(path))
            and not path.name.startswith(scratch.prefix("mp"))]  # this process's sockets' folder: removed at its exit
    assert not left, f"scratch folders left behind by the test suite: {sorted(map(str, left))}"
