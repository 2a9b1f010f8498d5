"""Conformance: the kit against stock `nbgrader autograde` on courses others wrote, every cell compared.

`python -m grader conformance FOLDER` takes a folder of courses, each a folder holding
`source/<assignment>/` (with its `nbgrader_config.py`, `autotests.yml` and `submitted/`
where it has them). For each course it releases every assignment with nbgrader, adds two
students to every assignment (`master`: the master's own answers in the release, as a
student who wrote them would hand them in; `release`: the release as handed out) beside the
course's own submissions, copies the course twice, grades one copy with stock
`nbgrader autograde` and the other with the kit's `grade`, and compares the automatic score
of every graded cell of every student, from the two gradebooks. `--nbgrader` adds the
notebooks nbgrader's own package ships (its user guide and its tests' files), laid out as
courses by `nbgrader_courses`.

It prints a table (assignment, cells, identical, the kit's statuses, stock's, why they
differ) and, with `--docs`, writes it as conformance.md and conformance.json there.
"""
import csv
import glob
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from grader.course import assignments, coursedir, solutions
from grader_eval import stock

MASTER, RELEASE = "master", "release"
_WHY_LIMIT = 5


@dataclass
class Row:
    """One assignment compared: what each grader did and where their scores differ."""
    course: str
    assignment: str
    notebooks: int = 0
    students: int = 0
    cells: int = 0
    identical: int = 0
    kit: dict = field(default_factory=dict)      # status -> students
    stock: str = ""                              # "graded", or why stock could not
    judged_inside: int = 0
    differences: list = field(default_factory=list)  # [student, cell, stock score, kit score, kit status]
    note: str = ""                               # what stopped either grader, in a line
    kit_notes: list = field(default_factory=list)  # the kit's notes to the instructor: which cells it judged
    #                                                inside and why, master cells that failed, the canary's findings
    seconds: dict = field(default_factory=dict)  # grader -> seconds

    @property
    def agrees(self):
        return not self.differences and self.stock == "graded"


# ---------------------------------------------------------------- students

def add_students(course_dir, name):
    """Put the `master` and `release` students of assignment `name` in submitted/ (the release must exist)."""
    layout = assignments.Layout(Path(course_dir), name)
    delimiters = solutions.delimiters_of(coursedir.course_directory(course_dir).config)
    for student in (MASTER, RELEASE):
        folder = layout.submitted(student)
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(layout.release_dir.iterdir()):
            if path.suffix == ".ipynb" and path.is_file():
                if student == MASTER:
                    answered = solutions.master_answers(layout.master(path.stem), path, delimiters)
                    nbformat.write(answered, str(folder / path.name))
                else:
                    shutil.copy(path, folder / path.name)


# ---------------------------------------------------------------- nbgrader's own notebooks

NBGRADER_COURSES = ("nbgrader-user-guide", "nbgrader-tests-apps", "nbgrader-tests-preprocessors")


def nbgrader_courses(folder, chosen=NBGRADER_COURSES):
    """Lay out the notebooks nbgrader's package ships as courses under `folder`; return their folders.

    `nbgrader-user-guide`: the user guide's ps1 and ps1_autotest with its header, autotests.yml and the two
    students it ships (bitdiddle, hacker). `nbgrader-tests-apps` and `nbgrader-tests-preprocessors`: every
    master notebook of the tests' files as an assignment of its own (named after it), with the files beside
    it, and each `submitted-*` or `<master>-changed`/`-unchanged` notebook as a student of its master."""
    import nbgrader
    package = Path(nbgrader.__file__).parent
    folder = Path(folder)
    made = []
    guide = package / "docs" / "source" / "user_guide"
    course = folder / "nbgrader-user-guide"
    if course.name in chosen:
        _user_guide(guide, course)
        made.append(course)
    for kind in ("apps", "preprocessors"):
        course = folder / f"nbgrader-tests-{kind}"
        if course.name in chosen:
            _test_files(package / "tests" / kind / "files", course)
            made.append(course)
    return made


def _user_guide(guide, course):
    """The user guide's course as its pages show it: ps1, ps1_autotest, two students' real submissions."""
    shutil.copytree(guide / "source", course / "source", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(guide / "autotests.yml", course / "autotests.yml")
    for student in ("bitdiddle", "hacker"):
        shutil.copytree(guide / "submitted" / student, course / "submitted" / student)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'nbgrader-user-guide'\n"
        "c.IncludeHeaderFooter.header = 'source/header.ipynb'\n")


def _test_files(files, course):
    """nbgrader's test files as a course: every master an assignment, each changed copy of it a student."""
    extras = [p for p in files.iterdir() if p.is_file() and p.suffix not in (".ipynb", ".py", ".db", ".zip", ".pyc")
              and p.name not in ("timestamp.txt",) and not p.name.startswith("submission_secret")]
    masters = [p for p in sorted(files.glob("*.ipynb")) if not _submission_of(p.stem)]
    for master in masters:
        source = course / "source" / master.stem
        source.mkdir(parents=True)
        shutil.copy(master, source / master.name)
        for extra in extras:
            if extra.name != "autotests.yml":
                shutil.copy(extra, source / extra.name)
    for path in sorted(files.glob("*.ipynb")):
        owner = _submission_of(path.stem)
        if owner and (files / f"{owner}.ipynb").exists():
            target = course / "submitted" / path.stem / owner
            target.mkdir(parents=True)
            shutil.copy(path, target / f"{owner}.ipynb")
    if (files / "autotests.yml").exists():
        shutil.copy(files / "autotests.yml", course / "autotests.yml")
    (course / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.course_id = '{course.name}'\n")


def _submission_of(stem):
    """The master a test file is a submission of (`submitted-changed` -> `test`, `autotest-simple-changed` ->
    `autotest-simple`), or None for a master."""
    if stem.startswith("submitted-"):
        return "test"
    match = re.fullmatch(r"(autotest-\w+)-(changed|unchanged)(-\w+)?", stem)
    return match.group(1) if match else None


# ---------------------------------------------------------------- one course

def _run(command, cwd, timeout=3600):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=stock.environment())


def _nbgrader(*args):
    return [sys.executable, "-m", "nbgrader", *args]


def _last_error(text, limit=300):
    """The line of a command's output that says what went wrong, shortened."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("error:")]  # the kit's own one-line reason, when it gave one
    if said:
        return said[0][:limit]
    for line in reversed(lines):
        if re.search(r"error|exception|refus|cannot|failed", line, re.I) and "Traceback" not in line:
            return line[:limit]
    return (lines[-1] if lines else "")[:limit]


def compare_course(course, workdir, say=print):
    """Rows for every assignment of `course` (a folder), graded by both graders in copies under `workdir`."""
    course = Path(course)
    base = Path(workdir) / course.name
    if base.exists():
        shutil.rmtree(base)
    shared = base / "shared"
    shutil.copytree(course, shared, ignore=shutil.ignore_patterns("__pycache__", "gradebook.db", "release",
                                                                  "autograded", "feedback"))
    if not (shared / "nbgrader_config.py").exists():
        (shared / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.course_id = '{course.name}'\n")
    rows = []
    for name in assignments.names(shared):
        row = Row(course.name, name, notebooks=len(assignments.Layout(shared, name).notebooks))
        rows.append(row)
        released = _run(_nbgrader("generate_assignment", name, "--force"), shared)
        if released.returncode != 0 and "old version" in released.stdout + released.stderr:
            # nbgrader's own advice for a notebook of an older nbgrader, as an instructor would follow it.
            _run(_nbgrader("update", f"source/{name}"), shared)
            released = _run(_nbgrader("generate_assignment", name, "--force"), shared)
            row.note = "its metadata was from an older nbgrader: `nbgrader update` first"
        if released.returncode != 0:
            row.stock = row.note = f"nbgrader cannot release it: {_last_error(released.stderr + released.stdout)}"
            continue
        add_students(shared, name)
    ready = [row for row in rows if not row.stock]
    stock_dir, kit_dir = base / "stock", base / "kit"
    shutil.copytree(shared, stock_dir, symlinks=True)
    shutil.copytree(shared, kit_dir, symlinks=True)
    for row in ready:
        say(f"  {course.name}/{row.assignment}: stock nbgrader autograde ...")
        started = time.perf_counter()
        # A course's notebooks may name a Python kernel this machine lacks (xpython, "Python [Root]"): stock runs
        # them in python3, as the kit runs every Python notebook.
        done = _run(_nbgrader("autograde", row.assignment, "--force", "--Execute.kernel_name=python3", *stock.STOCK), stock_dir)
        row.seconds["stock"] = round(time.perf_counter() - started, 1)
        say(f"  {course.name}/{row.assignment}: the kit's grade ...")
        started = time.perf_counter()
        kit = _run([sys.executable, "-m", "grader", "grade", row.assignment], kit_dir)
        row.seconds["kit"] = round(time.perf_counter() - started, 1)
        _compare(row, stock_dir, kit_dir, done, kit)
    return rows


def _compare(row, stock_dir, kit_dir, done, kit):
    """Fill `row` from the two gradebooks and the kit's grades CSV."""
    # A submission stock fails on keeps its gradebook entry, without scores, and no autograded/ folder.
    theirs = {student: cells for student, cells in stock.scores(stock_dir, row.assignment).items()
              if (Path(stock_dir) / "autograded" / student / row.assignment).is_dir()}
    mine = stock.scores(kit_dir, row.assignment)
    statuses, inside = _kit_statuses(kit_dir, row.assignment)
    row.kit_notes = [line.removeprefix("Note: ") for line in kit.stdout.splitlines() if line.startswith("Note: ")]
    row.judged_inside = inside
    if kit.returncode not in (0, 1) or not statuses:
        row.note = f"kit: {_last_error(kit.stderr + kit.stdout)}"
    students = sorted(p.parent.name for p in (Path(kit_dir) / "submitted").glob(f"*/{glob.escape(row.assignment)}")
                      if p.is_dir())
    statuses = {student: status for student, status in statuses.items() if student in students}
    row.kit = dict(Counter(statuses.values())) if statuses else {"not graded": len(students)}
    row.students = len(students)
    stock_failed = [s for s in students if s not in theirs]
    row.stock = "graded" if not stock_failed else f"not graded: {', '.join(stock_failed)}"
    if done.returncode != 0 and not theirs:
        row.stock = f"autograde failed: {_last_error(done.stderr + done.stdout)}"
    for student in sorted(theirs):
        a, b = theirs[student], mine.get(student, {})
        for cell in sorted(set(a) | set(b)):
            row.cells += 1
            if a.get(cell) == b.get(cell):
                row.identical += 1
            else:
                row.differences.append([student, ":".join(cell), a.get(cell), b.get(cell),
                                        statuses.get(student, "not graded")])


def _kit_statuses(course_dir, name):
    """(student -> status, cells judged inside) from the kit's grades CSV of `name`."""
    path = Path(course_dir) / "autograded" / f"{name}_grades.csv"
    if not path.exists():
        return {}, 0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    inside = max((len([c for c in row.get("judged_inside", "").split(";") if c.strip()]) for row in rows), default=0)
    return {row["student"]: row["status"] for row in rows}, inside


# ---------------------------------------------------------------- the whole folder

def courses_in(folder):
    """The courses of `folder`: itself if it holds source/, else each sub-folder that does."""
    folder = Path(folder)
    if (folder / "source").is_dir():
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "source").is_dir())


def table(rows):
    """The rows as a Markdown table, one line per assignment, and a line of totals."""
    lines = ["| course | assignment | notebooks | students | cells | identical | kit | stock | judged inside "
             "| why they differ |", "|---|---|---:|---:|---:|---:|---|---|---:|---|"]
    for row in rows:
        kit = ", ".join(f"{status} {n}" for status, n in sorted(row.kit.items()))
        why = "; ".join(f"{s} {c}: stock {a}, kit {b} ({st})" for s, c, a, b, st in row.differences[:_WHY_LIMIT])
        if len(row.differences) > _WHY_LIMIT:
            why += f"; and {len(row.differences) - _WHY_LIMIT} more"
        why = "; ".join(part for part in (why, row.note) if part)
        lines.append(f"| {row.course} | {row.assignment} | {row.notebooks} | {row.students} | {row.cells} | "
                     f"{row.identical} | {kit} | {row.stock} | {row.judged_inside} | {_cell(why)} |")
    gradable = [row for row in rows if row.stock == "graded"]
    lines.append("")
    lines.append(f"{len(rows)} assignments; stock grades {len(gradable)}; identical on every cell: "
                 f"{sum(row.agrees for row in gradable)} of {len(gradable)}; cells identical: "
                 f"{sum(r.identical for r in rows)} of {sum(r.cells for r in rows)}; cells judged inside: "
                 f"{sum(r.judged_inside for r in rows)}; submissions marked `tampering suspected`: "
                 f"{sum(r.kit.get('tampering suspected', 0) for r in rows)}.")
    noted = [row for row in rows if row.kit_notes]
    if noted:
        lines += ["", "What the kit said to the instructor (cells judged inside and why, master cells that failed, "
                      "what the canary found):", ""]
        lines += [f"- **{row.course}/{row.assignment}**: " + " / ".join(_cell(n) for n in row.kit_notes)
                  for row in noted]
    return "\n".join(lines)


def _cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def _run_on():
    """When and with what: the date, nbgrader's version, and the kit's commit where it is a git checkout."""
    import datetime

    import nbgrader
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                          text=True)
    commit = f", the kit at {done.stdout.strip()}" if done.returncode == 0 else ""
    return f"{datetime.date.today().isoformat()} (nbgrader {nbgrader.__version__}{commit})"


def main(folders, workdir, docs=None, with_nbgrader=False, say=print, keep_others=False):
    """Compare every course in `folders` (and nbgrader's own with `with_nbgrader`: True for all of them, or a
    tuple of NBGRADER_COURSES); print the table, write it to `docs` when given (with `keep_others`, the rows of
    other courses already there are kept); return the rows."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    courses = [course for folder in folders for course in courses_in(folder)]
    if with_nbgrader:
        own = workdir / "nbgrader-courses"
        if own.exists():
            shutil.rmtree(own)
        courses = nbgrader_courses(own, NBGRADER_COURSES if with_nbgrader is True else with_nbgrader) + courses
    rows = []
    for i, course in enumerate(courses, 1):
        say(f"[{i}/{len(courses)}] {course.name}")
        rows.extend(compare_course(course, workdir / "runs", say))
    if docs and keep_others and (Path(docs) / "conformance.json").exists():
        ran = {row.course for row in rows}
        kept = [Row(**r) for r in json.loads((Path(docs) / "conformance.json").read_text()) if r["course"] not in ran]
        rows = sorted(kept + rows, key=lambda r: (r.course, r.assignment))
    text = table(rows)
    print(text)
    if docs:
        docs = Path(docs)
        docs.mkdir(parents=True, exist_ok=True)
        (docs / "conformance.md").write_text("# Conformance: the kit against stock nbgrader autograde\n\n"
                                             f"Written by `python -m grader_eval.conformance` on {_run_on()}.\n\n"
                                             + text + "\n")
        (docs / "conformance.json").write_text(json.dumps([asdict(r) for r in rows], indent=1, default=str) + "\n")
    return rows


def build_parser():
    import argparse
    parser = argparse.ArgumentParser(prog="python -m grader_eval.conformance", description=" ".join(
        __doc__.split("\n\n")[1].split()))
    parser.add_argument("folders", nargs="*", metavar="FOLDER",
                        help="a course (a folder holding source/) or a folder of courses")
    parser.add_argument("--nbgrader", action="store_true", help="add the notebooks nbgrader's package ships")
    parser.add_argument("--workdir", help="where to build the copies (default: a temporary folder, removed after)")
    parser.add_argument("--docs", metavar="FOLDER", help="write conformance.md and conformance.json there")
    parser.add_argument("--keep-others", action="store_true",
                        help="with --docs: keep the rows of the courses not run this time (to run one course again)")
    return parser


def cli(argv=None):
    import tempfile
    parser = build_parser()
    args = parser.parse_args(argv)
    missing = [f for f in args.folders if not courses_in(f) if Path(f).is_dir()] + \
        [f for f in args.folders if not Path(f).is_dir()]
    if missing or not (args.folders or args.nbgrader):
        parser.error(f"no course in {', '.join(missing)}: give folders holding source/<assignment>/ (or folders of "
                     "them), or --nbgrader" if missing else "give a folder of courses, or --nbgrader")
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731 (progress on stderr, the table on stdout)
    if args.workdir:
        main(args.folders, args.workdir, args.docs, args.nbgrader, say, args.keep_others)
    else:
        with tempfile.TemporaryDirectory(prefix="conformance-") as workdir:
            main(args.folders, workdir, args.docs, args.nbgrader, say, args.keep_others)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
