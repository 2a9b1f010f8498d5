"""Does the command line do the main job, and say clearly what is wrong with bad input?"""
import subprocess
import sys

from conftest import ROOT, make_course_copy
from grader import cli


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_demo_grades_the_samples_and_reports_the_broken_one(tmp_path):
    """Does `python -m grader demo` release, grade the samples and print the table and the outputs?"""
    course_dir = make_course_copy(tmp_path / "course")
    result = run("--course-dir", str(course_dir), "demo")
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
    for name in ("grades.csv", "class_report.html"):
        assert str(course_dir / "autograded" / name) in result.stdout
    noise = [line for line in result.stderr.splitlines() if not line.startswith("grading [")]
    assert noise == [], f"the demo should print nothing but its progress on stderr: {noise}"


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
    for args in (["regrade"], ["demo", "--fast"]):
        result = run(*args)
        assert result.returncode == 2
        assert "usage: python -m grader" in result.stderr


def test_help_lists_every_command():
    text = cli.build_parser().format_help()
    for command in ("demo", "collect", "grade", "release", "benchmark", "figures", "checks-data"):
        assert command in text


def test_bad_flag_values_and_a_missing_course_folder_get_a_message_and_exit_2(tmp_path):
    course_dir = make_course_copy(tmp_path / "course")
    for args, message in [(("--course-dir", str(course_dir), "grade", "--jobs", "0"), "--jobs must be at least 1"),
                          (("--course-dir", str(tmp_path / "nowhere"), "grade"), "no course directory at"),
                          (("--course-dir", str(tmp_path), "grade"), "nbgrader_config.py is missing")]:
        result = run(*args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_damaged_gradebook_gets_a_message_and_exit_2_and_is_left_as_it_was(tmp_path):
    course_dir = make_course_copy(tmp_path / "course")
    damaged = b"this is not an SQLite database" * 100
    (course_dir / "gradebook.db").write_bytes(damaged)
    (course_dir / "submitted" / "someone" / "rnn_step_by_step").mkdir(parents=True)
    result = run("--course-dir", str(course_dir), "grade")
    assert result.returncode == 2 and "cannot be read" in result.stderr and "Traceback" not in result.stderr
    assert (course_dir / "gradebook.db").read_bytes() == damaged
