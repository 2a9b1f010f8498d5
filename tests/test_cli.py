"""Does the command line do the main job, and say clearly what is wrong with bad input?"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, fresh_setups, make_course_copy, rnn
from grader import cli
from grader.core import plain_text


PROGRESS = re.compile(r"^\w+ \[|^\S+: .* \.\.\.$")  # progress bars, and the lines naming each step


def run(*args, cwd=ROOT, module="grader", env=None):
    """The engine's command line (`python -m grader`), or with module="rnn_course" this course's."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def test_demo_grades_the_samples_and_reports_the_broken_one(tmp_path):
    """Does `python -m rnn_course demo` release, grade the samples and print the table and the outputs?"""
    course_dir = make_course_copy(tmp_path / "course")
    # As on a machine that never graded: nothing set up by an earlier command (see the phases below).
    result = run("--course-dir", str(course_dir), "demo", module="rnn_course", env=fresh_setups(tmp_path / "setups"))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.startswith("sample_")}
    assert rows["sample_correct"][1:3] == ["100", "20"]
    assert rows["sample_partial"][1:3] == ["50", "0"]
    assert rows["sample_blank"][1:3] == ["0", "0"]
    assert rows["sample_warning"][1:3] == ["100", "20"]
    assert "invalid notebook" in " ".join(rows["sample_broken"])
    assert "not valid JSON" in result.stdout
    assert (course_dir / "gradebook.db").exists()
    assert (course_dir / "autograded" / "sample_correct" / "rnn_step_by_step" / "rnn_step_by_step.ipynb").exists()
    for name in ("rnn_step_by_step_grades.csv", "rnn_step_by_step_report.html", "course_grades.csv"):
        assert str(course_dir / "autograded" / name) in result.stdout
    noise = [line for line in result.stderr.splitlines() if not PROGRESS.match(line)]
    assert noise == [], f"the demo should print nothing but its progress on stderr: {noise}"
    phases = [line.split(": ", 1)[1].split(" ")[0] for line in result.stderr.splitlines() if line.endswith(" ...")]
    assert phases == ["reading", "setting", "canary", "backing", "grading", "publishing", "comparing"], phases
    assert "forget-demo" in result.stdout  # the way on to a real class

    # A real student graded beside the samples; then the one step from the demo to a real class.
    from grader_eval import stock
    from rnn_course import samples
    samples.write(samples.fill(samples.master_solutions()), course_dir, "realstudent")
    graded = run("--course-dir", str(course_dir), "grade", "--student", "realstudent")
    assert graded.returncode == 1 and "realstudent: graded" in graded.stderr  # 1: the broken samples still wait
    before = stock.scores(course_dir, "rnn_step_by_step")["realstudent"]
    forget = run("--course-dir", str(course_dir), "forget-demo", module="rnn_course")
    assert forget.returncode == 0, forget.stderr
    assert "Gradebook backed up first" in forget.stdout and list((course_dir / "gradebook-backups").glob("*.db"))
    assert stock.scores(course_dir, "rnn_step_by_step") == {"realstudent": before}  # nobody else touched
    assert set(stock.export(course_dir)) == {"realstudent"}
    for folder in ("submitted", "autograded", "feedback"):
        assert sorted(p.name for p in (course_dir / folder).iterdir() if p.is_dir()) == ["realstudent"]
    for output in ("rnn_step_by_step_grades.csv", "rnn_step_by_step_report.html", "rnn_step_by_step_canvas.csv",
                   "course_grades.csv"):
        assert "sample_" not in (course_dir / "autograded" / output).read_text(), output
    assert "No demo students to forget" in run("--course-dir", str(course_dir), "forget-demo",
                                               module="rnn_course").stdout

    # Removing a real student asks first: without a terminal to answer, nothing is removed.
    refused = subprocess.run([sys.executable, "-m", "grader", "--course-dir", str(course_dir), "remove-students",
                              "realstudent"], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2 and "--yes" in refused.stderr and "realstudent: 1 submission" in refused.stdout
    assert set(stock.export(course_dir)) == {"realstudent"}
    refused = run("--course-dir", str(course_dir), "remove-students", "../gradebook.db", "--yes")
    assert refused.returncode == 2 and "not a student id" in refused.stderr and (course_dir / "gradebook.db").is_file()


def test_the_first_install_says_what_it_does_and_shows_pips_progress():
    recipe = (ROOT / "Makefile").read_text().split("$(BIN)/.installed: requirements.txt", 1)[1].split("\n\n")[0]
    assert "a few minutes the first time" in recipe
    assert "install --progress-bar on -r requirements.txt" in recipe and "--quiet -r" not in recipe


def test_no_make_target_deletes_a_gradebook():
    """`make clean` once deleted gradebook.db: grades leave only through remove-students or forget-demo."""
    makefile = (ROOT / "Makefile").read_text()
    commands = [line for line in makefile.splitlines() if line.startswith("\t")]
    assert not [c for c in commands if ".db" in c or "gradebook" in c or "autograded" in c or "submitted" in c]
    dry = subprocess.run(["make", "-n", "clean"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "gradebook" not in dry.stdout and ".db" not in dry.stdout


def test_grade_with_no_submissions_says_where_to_put_them(tmp_path):
    course_dir = make_course_copy(tmp_path / "course")
    result = run("--course-dir", str(course_dir), "grade")
    assert result.returncode != 0
    assert "submitted/<student>/rnn_step_by_step/rnn_step_by_step.ipynb" in result.stderr


def test_missing_config_names_the_file_and_the_fix(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("--course-dir", str(tmp_path / "empty"), "release")
    assert result.returncode == 2
    assert "nbgrader_config.py is missing" in result.stderr and "copy the one" in result.stderr


def test_unknown_command_or_flag_is_refused_with_usage():
    for args in (["regrade"], ["grade", "--fast"]):
        result = run(*args)
        assert result.returncode == 2
        assert "usage: python -m grader" in result.stderr


def test_help_lists_every_command_the_engines_and_the_courses():
    from grader_eval import commands as tools
    from rnn_course import cli as course_cli
    engine = cli.build_parser().format_help()
    for command in ("collect", "grade", "publish", "release"):
        assert command in engine
    assert "benchmark" not in engine, "the measuring tools are not the engine's"
    engine = cli.build_parser(tools=tools.COMMANDS).format_help()  # as `python -m grader` builds it
    assert "benchmark" in engine.split("Exit codes")[0].split("the grader's commands")[1]
    assert "demo" not in engine and "figures" not in engine, "the engine has no assignment of its own"
    text = cli.build_parser(commands=course_cli.COMMANDS, tools=tools.COMMANDS).format_help()
    for command in ("demo", "collect", "grade", "release", "benchmark", "figures", "checks-data"):
        assert command in text


def test_help_speaks_to_instructors_with_an_example_and_mistakes_get_the_commands_own_usage():
    version = run("--version")
    assert version.returncode == 0 and "1.0.0" in version.stdout
    top = run("--help")
    assert "Grade a course's notebooks" in top.stdout and "function of the package" not in top.stdout
    for command, example in [("grade", "grade ps1 --student alice --student bob --force"),
                             ("collect", "collect ~/Downloads/"), ("publish", "publish ps1")]:
        assert f"Example: python -m grader {example}" in run(command, "--help").stdout, command
    mistake = run("grade", "--forse")
    assert mistake.returncode == 2 and "usage: python -m grader grade" in mistake.stderr
    assert "unrecognized arguments: --forse" in mistake.stderr


def test_counts_in_messages_agree_with_their_nouns(tmp_path):
    from grader.collect import intake
    from rnn_course import samples
    assert plain_text.counted(1, "submission") == "1 submission" and plain_text.counted(2, "file") == "2 files"
    course_dir = make_course_copy(tmp_path / "course")
    source = tmp_path / "download"
    source.mkdir()
    samples.write(samples.fill({}), source, "alice")
    found = intake.collect(source / "submitted", rnn(course_dir))
    assert intake.describe(found, rnn(course_dir)).startswith("Collected 1 submission of rnn_step_by_step into")


def test_bad_flag_values_and_a_missing_course_folder_get_a_message_and_exit_2(tmp_path):
    course_dir = make_course_copy(tmp_path / "course")
    for args, message in [(("--course-dir", str(course_dir), "grade", "--jobs", "0"), "--jobs must be at least 1"),
                          (("--course-dir", str(tmp_path / "nowhere"), "grade"), "no course directory at"),
                          (("--course-dir", str(tmp_path), "grade"), "nbgrader_config.py is missing")]:
        result = run(*args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def _gradebook_cases(tmp_path):
    """(name, bytes of gradebook.db or None, expected message): a damaged, a cut, and a foreign database."""
    import sqlite3
    good = make_course_copy(tmp_path / "good")
    assert run("--course-dir", str(good), "release").returncode == 0
    whole = (good / "gradebook.db").read_bytes()
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    return [("not sqlite", b"this is not an SQLite database" * 100, "is not an SQLite database"),
            ("cut short", whole[: len(whole) // 3], "damaged"),
            ("foreign", foreign.read_bytes(), "not an nbgrader gradebook")]


def test_a_damaged_cut_or_foreign_gradebook_gets_a_message_and_exit_2_and_is_left_as_it_was(tmp_path):
    for name, data, message in _gradebook_cases(tmp_path):
        course_dir = make_course_copy(tmp_path / name.replace(" ", "_"))
        (course_dir / "gradebook.db").write_bytes(data)
        (course_dir / "submitted" / "someone" / "rnn_step_by_step").mkdir(parents=True)
        for command in ("grade", "publish", "release"):
            result = run("--course-dir", str(course_dir), command)
            assert result.returncode == 2, (name, command, result.stderr)
            assert message in result.stderr and "Traceback" not in result.stderr, (name, command, result.stderr)
            assert "README" in result.stderr or "--course-dir" in result.stderr
            assert (course_dir / "gradebook.db").read_bytes() == data, f"{name}: the gradebook was changed"


def test_a_locked_gradebook_gets_a_message_and_exit_2_and_loses_nothing(graded_course, tmp_path):
    import shutil
    import sqlite3
    course_dir = tmp_path / "course"
    shutil.copytree(graded_course, course_dir)
    before = (course_dir / "gradebook.db").read_bytes()
    holder = sqlite3.connect(course_dir / "gradebook.db")
    holder.execute("BEGIN EXCLUSIVE")  # another program in the middle of writing
    try:
        result = run("--course-dir", str(course_dir), "grade")
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 2 and "is in use" in result.stderr and "Traceback" not in result.stderr
    assert "run the same command again" in result.stderr
    assert (course_dir / "gradebook.db").read_bytes() == before


def test_the_course_is_found_from_any_folder_inside_it_and_hints_work_as_printed(graded_course, tmp_path):
    """From a subfolder, the installed `rnn-grader` finds its course; from outside, it says what to do."""
    import os
    import shlex
    import shutil
    command = Path(sys.executable).with_name("rnn-grader")
    assert command.exists(), "the kit is installed into its environment (pip install -e . from requirements.txt)"
    course_dir = tmp_path / "course"
    shutil.copytree(graded_course, course_dir, ignore=shutil.ignore_patterns("submitted", "autograded"))
    inside = course_dir / "source" / "rnn_step_by_step"
    result = subprocess.run([str(command), "grade"], cwd=inside, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "nothing to grade" in result.stderr, result.stderr
    assert str(course_dir / "submitted") in result.stderr, "the course holding the current folder was used"
    # The hint in that message is a command line: run as printed, from the same folder, it works.
    hint = result.stderr.split("collect them with `")[1].split("`")[0]
    words = shlex.split(hint.replace("<folder or zip>", str(tmp_path / "nothing.zip")))
    assert shutil.which(words[0]) or os.path.isabs(words[0]), hint
    followed = subprocess.run(words, cwd=inside, capture_output=True, text=True, timeout=300)
    assert followed.returncode == 2 and "nothing.zip does not exist" in followed.stderr, followed.stderr
    outside = subprocess.run([str(command), "grade"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert outside.returncode == 2 and "no course here" in outside.stderr and "--course-dir" in outside.stderr
    # From outside the course, hints carry --course-dir, so that they work from there too.
    result = subprocess.run([str(command), "--course-dir", str(course_dir), "grade"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert f"--course-dir {course_dir} collect" in result.stderr, result.stderr


def _session_processes(sid):
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                alive.append(entry.name)
    return alive


@pytest.fixture(scope="module")
def busy_course(tmp_path_factory):
    """A released course with 16 submissions: a few seconds of grading to interrupt."""
    from conftest import SAMPLES
    import rnn_course
    from grader.course import release
    from rnn_course import samples
    course_dir = make_course_copy(tmp_path_factory.mktemp("busy") / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    for i in range(16):
        samples.write(SAMPLES["sample_correct"][1], course_dir, f"student{i:02}")
    return course_dir


@pytest.mark.parametrize("delay", [0.1, 0.6, 1.5, 3.0, 6.0])
def test_ctrl_c_at_any_moment_gives_a_short_message_exit_130_and_leaves_nothing(busy_course, tmp_path, delay):
    """Ctrl-C (SIGINT to the whole foreground process group, as a terminal sends it) while loading,
    preparing, grading or publishing: a short message, exit 130, no process and no scratch folder left."""
    import os
    import signal
    import time
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # As a terminal starts it: SIGINT at its default, even when this suite runs from a script in the background
    # (which starts everything with SIGINT ignored, and the grader then rightly leaves it ignored).
    # Set up from nothing (no set-up kept by an earlier command), so that the delays land in every phase.
    process = subprocess.Popen([sys.executable, "-m", "grader", "--course-dir", str(busy_course), "grade",
                                "--force"], env=dict(fresh_setups(tmp_path / "setups"), TMPDIR=str(scratch)),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS.match(line)]
    assert process.returncode == 130, (delay, process.returncode, err[-3000:])
    assert "Traceback" not in err and len(lines) <= 3, (delay, err[-3000:])
    deadline = time.monotonic() + 10
    while _session_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _session_processes(process.pid) == [], "a process of the interrupted run is still alive"
    assert list(scratch.iterdir()) == [], f"scratch left behind: {list(scratch.iterdir())}"


def test_a_deep_temporary_folder_grades_as_any_other(tmp_path):
    """The fork servers' sockets go under $TMPDIR, and a Unix socket's path holds 107 bytes: under a deep
    temporary folder `grade` stopped with "AF_UNIX path too long" (seen when pytest's own folder numbers reached
    three digits). The sockets then go in /tmp; the grade is the same, and nothing is left in either folder (the
    kit's folders in /tmp are named by their process: another test's grader may be making its own meanwhile)."""
    from grader.grade import batch
    from rnn_course import samples
    deep = tmp_path / ("t" * 60) / ("m" * 40)
    deep.mkdir(parents=True)
    from grader.course import release
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, "rnn_step_by_step")
    samples.write(samples.fill(samples.master_solutions()), course_dir, "student")
    process = subprocess.Popen([sys.executable, "-m", "grader", "--course-dir", str(course_dir), "grade"], cwd=ROOT,
                               env=dict(fresh_setups(tmp_path / "setups"), TMPDIR=str(deep)), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert batch.stored_result(rnn(course_dir), "student").total == 120
    assert list(deep.iterdir()) == [] and not list(Path("/tmp").glob(f"trusted-grader-*-{process.pid}-*"))


def test_a_release_that_would_change_graded_cells_is_refused_and_the_old_release_kept(tmp_path):
    """Once the gradebook holds a submission, nbgrader refuses a master whose nbgrader cells changed.
    The kit says why and what to do, exits 2, and keeps the release students already have."""
    from nbgrader.api import Gradebook
    from grader.core import notebook
    import rnn_course
    course_dir = make_course_copy(tmp_path / "course")
    assert run("--course-dir", str(course_dir), "release").returncode == 0
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        gradebook.add_student("someone")
        gradebook.add_submission(rnn_course.ASSIGNMENT, "someone")
    release_before = {p.relative_to(course_dir): p.read_bytes() for p in (course_dir / "release").rglob("*") if p.is_file()}
    master = course_dir / "source" / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.ipynb"
    nb = notebook.read(master)
    nb.cells.remove(notebook.cell_by_id(nb, "test_lstm_backward"))
    import nbformat
    nbformat.write(nb, str(master))
    result = run("--course-dir", str(course_dir), "release")
    assert result.returncode == 2, result.stderr
    assert "already holds submissions" in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr
    release_after = {p.relative_to(course_dir): p.read_bytes() for p in (course_dir / "release").rglob("*") if p.is_file()}
    assert release_after == release_before, "the release students have was changed or removed"


def test_course_dir_goes_before_or_after_the_command_and_help_groups_the_commands(graded_course, tmp_path):
    before = run("--course-dir", str(graded_course), "publish", "--help")
    after = run("publish", "--course-dir", str(graded_course), "--help")
    assert before.returncode == after.returncode == 0 and "--course-dir" in after.stdout
    elsewhere = subprocess.run([sys.executable, "-m", "grader", "release", "--course-dir", str(tmp_path / "none")],
                               cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert elsewhere.returncode == 2 and "no course directory at" in elsewhere.stderr, "after the command, it counts"
    text = subprocess.run([sys.executable, "-m", "rnn_course", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300).stdout
    engine, own = text.split("the grader's commands")[1].split("this course's own commands")
    assert "collect" in engine and "grade" in engine and "demo" not in engine
    assert "demo" in own and "figures" in own and "checks-data" in own and "collect" not in own
    assert "command ..." in text.splitlines()[0]


def test_a_course_command_run_in_another_course_says_so_in_one_line_and_writes_nothing(tmp_path):
    other = tmp_path / "other"
    (other / "source" / "hw1").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", other)
    before = sorted(p.relative_to(ROOT) for p in (ROOT / "source").rglob("*"))
    for command in ("demo", "figures", "checks-data"):
        done = subprocess.run([sys.executable, "-m", "rnn_course", command], cwd=other, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert f"`{command}` belongs to this kit's own course" in done.stderr
    assert sorted(p.relative_to(ROOT) for p in (ROOT / "source").rglob("*")) == before
    assert sorted(p.name for p in other.iterdir()) == ["nbgrader_config.py", "source"]


def test_a_hint_is_the_command_as_typed_when_the_environment_is_not_on_the_users_path(graded_course, tmp_path):
    """nbgrader needs this environment's scripts on the process's PATH; the user's shell may not have them. A
    hint printed after `/path/to/.venv/bin/rnn-grader ...` spells that path out, so that it runs as printed."""
    import os
    command = Path(sys.executable).with_name("rnn-grader")
    course_dir = tmp_path / "course"  # its own copy, with no submissions, whatever other tests left in theirs
    shutil.copytree(graded_course, course_dir, ignore=shutil.ignore_patterns("submitted", "autograded"))
    plain = ":".join(d for d in os.environ["PATH"].split(":") if d != str(command.parent))
    result = subprocess.run([str(command), "--course-dir", str(course_dir), "grade"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PATH": plain})
    assert "collect them with `" in result.stderr, result.stderr
    hint = result.stderr.split("collect them with `")[1].split("`")[0]
    assert hint.startswith(str(command) + " "), hint


def test_what_a_ctrl_c_leaves_half_made_says_nothing_when_python_exits(tmp_path):
    """Ctrl-C in the middle of an import can leave objects whose clean-up fails as Python exits (seen: the
    vendored pyparsing of setuptools, while nbgrader loaded). After the one-line message, nothing more."""
    script = tmp_path / "interrupted.py"
    script.write_text(
        "import sys\n"
        "from grader import cli\n"
        "class HalfMade:\n"
        "    def __del__(self):\n"
        "        self.never_set\n"
        "def command(args):\n"
        "    kept = HalfMade()\n"
        "    kept.me = kept  # a cycle: collected only as Python exits\n"
        "    raise KeyboardInterrupt\n"
        "sys.exit(cli.main(['halfway'], commands=[('halfway', command, 'h', 'halfway', lambda p: None)]))\n")
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 130
    assert done.stderr.strip() == "Interrupted. Nothing graded so far is lost: run the same command again to finish."
