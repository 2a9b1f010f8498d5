"""Every command the README shows runs as printed.

Each command in the README (code blocks and inline code) is checked against the program's own
parser: a `make` target exists, an `rnn-grader` or `python -m grader` line parses, an `nbgrader`
subcommand exists and is not one of its deprecated stubs. The README's code blocks of instructor
work then run, as printed, in bash: `make demo` and `make forget-demo` in a copy of the repository,
the batch-grading block in a course with a Canvas download in ~/Downloads, and nbgrader's quickstart
block with ~/Downloads/ps1.zip.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbgrader
import pytest

from conftest import ROOT, make_course_copy
from grader.nbgrader_engine import BLOCK
from rnn_course import samples

README = (ROOT / "README.md").read_text()
PROGRAMS = ("make", "rnn-grader", "nbgrader", "python", "python3", "jupyter")


def code_blocks():
    return re.findall(r"```[a-z]*\n(.*?)```", README, re.S)


def commands():
    """Every command the README shows, as printed: a line of a code block, or an inline code span, that starts
    with a program; `&&` chains split. Placeholders (`...`, `<...>`) and the layout's tree are left out."""
    found = [line for block in code_blocks() if not block.startswith("source/") for line in block.splitlines()]
    found += re.findall(r"`([^`\n]+)`", README)
    out = []
    for text in found:
        text = text.split("#", 1)[0].strip()
        for part in text.split("&&"):
            part = part.strip()
            program = part.split(" ", 1)[0]
            if (program in PROGRAMS or program.startswith(".venv/bin/")) and "..." not in part and "<" not in part:
                out.append(part)
    return sorted(set(out))


def test_the_readme_shows_the_commands_this_test_checks():
    shown = commands()
    for expected in ("make demo", "make test", "make forget-demo", "rnn-grader grade", "nbgrader export",
                     "nbgrader release_feedback rnn_step_by_step", "jupyter lab"):
        assert expected in shown, expected


@pytest.mark.parametrize("command", commands())
def test_every_command_parses_with_its_programs_own_parser(command):
    words = shlex.split(command)
    program, args = words[0], words[1:]
    if program.startswith(".venv/bin/"):
        assert (ROOT / program).exists() or program.endswith(("rnn-grader", "nbgrader", "python")), program
        program = program.removeprefix(".venv/bin/")
    if program == "python" and args[:2] == ["-m", "grader"]:
        program, args = "grader", args[2:]
    elif program == "python" and args[:2] == ["-m", "rnn_course"]:
        program, args = "rnn-grader", args[2:]
    if program == "python" and args[:2] == ["-m", "grader_eval.conformance"]:
        from grader_eval import conformance
        conformance.build_parser().parse_args(args[2:])
    elif program == "python" and args[:1] == ["tools/conformance/rebuild.py"]:
        import runpy
        runpy.run_path(str(ROOT / args[0]))["build_parser"]().parse_args(args[1:])
    elif program == "make":
        dry = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, f"{command}: {dry.stderr}"
    elif program in ("rnn-grader", "grader") and not args:
        pass  # the command's name, as the text introduces it
    elif program in ("rnn-grader", "grader"):
        from grader import cli as engine
        from grader_eval import commands as tools
        from rnn_course import cli as course
        parser = (engine.build_parser(prog="rnn-grader", commands=course.COMMANDS, tools=tools.COMMANDS)
                  if program == "rnn-grader" else engine.build_parser(tools=tools.COMMANDS))
        try:
            parsed = parser.parse_args(args)
        except SystemExit as stop:
            pytest.fail(f"{command}: refused by the command's parser (exit {stop.code})")
        assert parsed.func
    elif program == "nbgrader":
        from nbgrader.apps.nbgraderapp import NbGraderApp
        subcommands = NbGraderApp.subcommands
        assert args[0] in subcommands, f"{command}: nbgrader has no subcommand {args[0]!r}"
        description = subcommands[args[0]][1]
        assert "DEPRECATED" not in description and args[0] != "formgrade", f"{command}: {description.strip()}"
    elif program == "jupyter":
        assert args[0] == "lab" and (Path(sys.executable).parent / "jupyter-lab").exists()
    elif program == "python3":
        assert args[:2] == ["-m", "venv"]
    elif program == "dask":  # Dask's own command line: the subcommand exists and takes every option shown
        shown = subprocess.run([str(Path(sys.executable).with_name("dask")), args[0], "--help"],
                               capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, f"{command}: {shown.stderr}"
        for option in (a for a in args if a.startswith("--")):
            assert option in shown.stdout, f"{command}: `dask {args[0]}` has no {option}"
    else:
        pytest.fail(f"{command}: no check for {program}")


def run_block(block, cwd, home):
    """A README code block run by bash, line after line, as printed; returns [(line, exit code, output)]."""
    lines = [line for line in block.strip().splitlines()]
    script = "".join(f"{line}\necho \"::rc=$? {i}\"\n" for i, line in enumerate(lines))
    env = {**os.environ, "HOME": str(home), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    codes = {int(i): int(rc) for rc, i in re.findall(r"::rc=(\d+) (\d+)", out.stdout)}
    return [(line, codes.get(i), out.stdout + out.stderr) for i, line in enumerate(lines)]


def block_with(text):
    [block] = [b for b in code_blocks() if text in b]
    return block


def correct_notebook():
    return json.dumps(samples.fill(samples.master_solutions()).dict())


def test_make_demo_and_make_forget_demo_run_as_printed_in_a_copy_of_the_repository(tmp_path):
    repo = make_course_copy(tmp_path / "repo")
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, repo / name)
    (repo / ".venv").symlink_to(ROOT / ".venv")
    installed = ROOT / ".venv" / "bin" / ".installed"
    if installed.exists():  # as fresh as the one in the repository: make does not install again
        for name in ("requirements.txt", "pyproject.toml"):
            os.utime(repo / name, (installed.stat().st_mtime - 1,) * 2)
    [(line, code, output)] = run_block("make demo", repo, tmp_path)
    assert code == 0, output[-3000:]
    assert "sample_correct" in output and "forget-demo" in output
    # The command the demo suggests works as printed in the user's own shell (whose PATH is not make's).
    suggested = output.split("take the samples out: `")[1].split("`")[0]
    venv_bin = str(Path(sys.executable).parent)
    plain_path = ":".join(d for d in os.environ["PATH"].split(":") if d != venv_bin)
    followed = subprocess.run(["bash", "-c", suggested], cwd=repo, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PATH": plain_path, "HOME": str(tmp_path)})
    assert followed.returncode == 0 and "ready for a real class" in followed.stdout, (suggested, followed.stderr)
    assert not list((repo / "submitted").iterdir())
    assert not list((repo / "autograded").glob("*_copies.*"))  # the copy report named the samples
    [(line, code, output)] = run_block("make forget-demo", repo, tmp_path)
    assert code == 0 and "No demo students to forget" in output, output[-3000:]


def test_the_batch_grading_block_runs_as_printed(tmp_path):
    course = make_course_copy(tmp_path / "course")
    home = tmp_path / "home"
    (home / "Downloads").mkdir(parents=True)
    with zipfile.ZipFile(home / "Downloads" / "submissions.zip", "w") as z:
        z.writestr("doejane_1001_5001_rnn_step_by_step.ipynb", correct_notebook())
        z.writestr("smithal_1003_5004_rnn_step_by_step.ipynb", correct_notebook())
    subprocess.run([sys.executable, "-m", "rnn_course", "--course-dir", str(course), "release"], check=True,
                   capture_output=True, timeout=600)
    ran = run_block(block_with("rnn-grader collect ~/Downloads/submissions.zip"), course, home)
    assert [code for _, code, _ in ran] == [0, 0], ran[-1][2][-3000:]
    rows = (course / "autograded" / "rnn_step_by_step_canvas.csv").read_text().splitlines()
    assert rows[2:] == ["doejane,1001,,,,120", "smithal,1003,,,,120"]


def test_the_formgrader_block_runs_as_printed(tmp_path):
    course = make_course_copy(tmp_path / "course")
    shipped = (course / "nbgrader_config.py").read_text()
    ran = run_block(block_with("rnn-grader nbgrader-config enable"), course, tmp_path)
    assert [code for _, code, _ in ran] == [0, 0, 0], ran[-1][2][-3000:]
    output = ran[-1][2]
    assert "already has the kit's lines" in output and "grade with the kit" in output and "were taken out" in output
    assert BLOCK not in (course / "nbgrader_config.py").read_text()
    assert (course / "nbgrader_config.py").read_text() + "\n" + BLOCK == shipped


def test_the_quickstart_block_runs_as_printed(tmp_path):
    home = tmp_path / "home"
    (home / "Downloads").mkdir(parents=True)
    block = block_with("nbgrader quickstart course101")
    # ps1 as its students hand it in, answers left as they are: the notebooks `nbgrader quickstart` copies.
    source = Path(nbgrader.__file__).parent / "docs" / "source" / "user_guide" / "source" / "ps1"
    with zipfile.ZipFile(home / "Downloads" / "ps1.zip", "w") as z:  # a folder per student
        for student in ("kim", "lee"):
            for name in ("problem1.ipynb", "problem2.ipynb"):
                z.writestr(f"{student}/{name}", (source / name).read_text())
    kit_folder = make_course_copy(tmp_path / "kit")  # where a reader of the README stands: the kit's own course
    ran = run_block(block, kit_folder, home)
    codes = [code for _, code, _ in ran]
    # ps1's answers are graded by hand: until they are, grade says the submissions need attention (exit 1).
    assert codes == [0, 0, 0, 1], ran[-1][2][-3000:]
    assert "awaiting a manual grade" in (home / "course101" / "autograded" / "ps1_grades.csv").read_text()
    assert not (kit_folder / "gradebook.db").exists() and not (kit_folder / "course101").exists(), \
        "the example course is made elsewhere: nothing of it reaches the kit's course"
    grades = (home / "course101" / "autograded" / "ps1_grades.csv").read_text()
    assert "kim," in grades and "lee," in grades
