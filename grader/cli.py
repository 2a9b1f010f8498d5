"""Grade a course's notebooks in parallel, each in a sandbox, into nbgrader's gradebook; publish grades,
reports and feedback from it.

Exit codes: 0 all is well; 1 something needs an instructor's attention (a submission
not graded normally, a file not matched at intake); 2 bad usage or set-up; 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TYPE_CHECKING

from grader.core.errors import KitError
from grader import terminal
from grader.course import coursedir

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from grader.core.limits import Limits
    from grader.core.model import AssignmentSpec
    from grader.course.assignments import Layout
    from grader.report.publish import Published
    from grader.similarity.copy_report import CopyReport

    # A command: (name, function, help, example, how to add its arguments), as in COMMANDS.
    Command = tuple[str, Callable[[argparse.Namespace], int | None], str, str,
                    Callable[[argparse.ArgumentParser], object]]

NEEDS_ATTENTION = 1
USAGE = 2
INTERRUPTED = 130


def cmd_release(args: argparse.Namespace) -> None:
    from grader.course import release
    for name in _chosen(args, every="source"):
        terminal.released(name, release.generate(args.course_dir, name))


def _chosen(args, every):
    """The assignments a command works on: the one named, else every one `every` says ("source": all under
    source/; "submitted": those with submissions)."""
    from grader.course import assignments
    from grader.grade import batch
    if getattr(args, "assignment", None):
        return [assignments.find(args.course_dir, args.assignment).name]
    found = assignments.names(args.course_dir)
    if not found:
        assignments.find(args.course_dir)  # raises, saying where assignments go
    if every == "submitted":
        with_submissions = [n for n in found if batch.submitted_students(assignments.Layout(Path(args.course_dir), n))]
        if not with_submissions and len(found) > 1:
            raise KitError(f"no submissions yet: {Path(args.course_dir) / 'submitted'} holds no "
                           f"<student>/<assignment>/ folders for any of {', '.join(found)}. Put each submission at "
                           "submitted/<student>/<assignment>/<notebook>.ipynb, or collect them with "
                           f"`{coursedir.hint('collect <folder or zip> --assignment <assignment>')}`.")
        found = with_submissions or found
    return found


def _limits(args):
    """The limits from the flags; a cell timeout not given is the course's (c.ExecutePreprocessor.timeout), as
    stock autograde's, and the notebook's budget at least twice that."""
    from grader.core.limits import Limits, budget_for
    for name in ("cell_timeout", "budget", "memory_mb", "output_chars"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            raise KitError(f"--{name.replace('_', '-')} must be positive, not {getattr(args, name)}")
    cell_timeout = (args.cell_timeout or coursedir.cell_timeout(coursedir.course_directory(args.course_dir).config)
                    or Limits.cell_timeout)
    budget = args.budget or budget_for(cell_timeout)
    return Limits(cell_timeout, budget, args.memory_mb, args.output_chars)


def grade_and_report(course_dir: Path | str, name: str | None = None, students: list[str] | None = None,
                     force: bool = False, jobs: int | None = None, scheduler: str | None = None,
                     limits: Limits | None = None, confine: bool = True, timings: dict[str, Any] | None = None) -> int:
    """Grade assignment `name` (None: the course's only one), publish its outputs from the gradebook, print the
    summary; return the exit code. `timings`, a dict: filled with where the time went (stage -> seconds, and
    "submissions", the number graded), for the benchmark."""
    from grader.app import workflows

    if not confine:
        terminal.unconfined_warning()
    graded = workflows.grade_and_publish(course_dir, name, students, force, jobs, scheduler, limits, confine,
                                         progress=terminal.Progress)
    if timings is not None:
        timings.update(graded.timings())
    done, published = graded.batch, graded.published
    if done.pending:
        code = INTERRUPTED
    elif done.kept or done.misplaced or published.needs_attention:
        code = NEEDS_ATTENTION
    else:
        code = 0
    terminal.graded(graded, interrupted=code == INTERRUPTED, needs_attention=code == NEEDS_ATTENTION)
    return code


def publish_and_report(layout: Layout, spec: AssignmentSpec | None = None) -> Published:
    """Write the assignment's CSV, class report and feedback pages, and the course's CSV, from the gradebook;
    print the table. Returns what was published. `spec`: the assignment as loaded (None: loaded here)."""
    from grader.app import workflows
    from grader.grade import batch

    spec = spec or batch.load_assignment(layout)
    done = workflows.publish_from_gradebook(layout, spec, progress=terminal.Progress)
    terminal.published(layout, spec, done)
    return done


def cmd_publish(args: argparse.Namespace) -> int:
    from grader.course import assignments
    code = 0
    for name in _chosen(args, every="submitted"):
        done = publish_and_report(assignments.Layout(Path(args.course_dir), name))
        if done.needs_attention:  # as `grade`
            code = NEEDS_ATTENTION
    return code


def cmd_grade(args: argparse.Namespace) -> int:
    from grader.course import assignments
    from grader.grade import batch
    limits = _limits(args)
    names = _chosen(args, every="submitted")
    handed = {}
    if args.student and not args.assignment:  # the assignments these students handed in
        handed = {n: set(batch.submitted_students(assignments.Layout(Path(args.course_dir), n))) for n in names}
        names = [n for n in names if handed[n] & set(args.student)] or names
    codes = []
    for name in names:
        if len(names) > 1:
            terminal.say(f"\n=== {name} ===")
        students = args.student
        if students and name in handed and len(names) > 1:
            students = [s for s in students if s in handed[name]]
        try:
            codes.append(grade_and_report(args.course_dir, name, students, args.force, args.jobs, args.scheduler,
                                          limits, confine=not args.unconfined))
        except KitError as error:
            if len(names) == 1:
                raise
            # One assignment that cannot be graded (not released, say) does not hold up the others.
            terminal.error(f"{name}: {error}")
            codes.append(USAGE)
        if codes[-1] == INTERRUPTED:
            return INTERRUPTED
    return max(codes)


def cmd_collect(args: argparse.Namespace) -> int:
    from grader.collect import intake
    from grader.course import assignments
    layout = assignments.find(args.course_dir, args.assignment)
    found = intake.collect(args.source, layout, pattern=args.pattern)
    terminal.say(intake.describe(found, layout), student_text=True)
    return NEEDS_ATTENTION if found.unmatched else 0


def copy_report(layout: Layout, spec: AssignmentSpec | None = None, known: Path | str | None = None
                ) -> CopyReport:
    """Write the assignment's copy report (CSV and page) and say where."""
    from grader.app import workflows
    done = workflows.copy_report(layout, spec, known, progress=terminal.Progress)
    terminal.copy_report(done)
    return done


def cmd_nbgrader_config(args: argparse.Namespace) -> int:
    """Write, remove or show the kit's lines in the course's nbgrader_config.py (see nbgrader_engine.py)."""
    from grader import nbgrader_engine as engine

    path = Path(args.course_dir) / "nbgrader_config.py"
    if args.action == "show":
        used, on = engine.in_use(coursedir.course_directory(args.course_dir).config)
        terminal.config_shown(path, engine.is_enabled(path.read_text()), on, used)
        return 0
    try:
        done = engine.switch(path, on=args.action == "enable")
    except ValueError as error:
        raise KitError(f"{path}: {error}.") from None
    terminal.config_switched(path, args.action == "enable", done)
    return 0


def cmd_copies(args: argparse.Namespace) -> int:
    from grader.course import assignments
    for name in _chosen(args, every="submitted"):
        copy_report(assignments.Layout(Path(args.course_dir), name), known=args.known)
    return 0


def cmd_remove_students(args: argparse.Namespace) -> int:
    from grader.app import removal
    removal.check_names(args.student)
    terminal.removal_planned(removal.holdings(args.course_dir, args.student))
    if not args.yes:
        if not sys.stdin.isatty():
            raise KitError("removing students deletes their grades: run it in a terminal to confirm, or add --yes.")
        if input("Remove these students, their grades and their folders? Type yes: ").strip() != "yes":
            terminal.say("Nothing was removed.")
            return NEEDS_ATTENTION
    terminal.removed(removal.remove_students(args.course_dir, args.student))
    return 0


def cmd_manual_grades(args: argparse.Namespace) -> int:
    """Out: what waits for a hand grade, as a CSV to fill in. In: the filled CSV, written as formgrader writes."""
    from grader.collect import manual
    from grader.course import assignments
    layout = assignments.find(args.course_dir, args.assignment)
    name = layout.name
    course = coursedir.course_directory(args.course_dir)
    if args.action == "export":
        terminal.manual_exported(args.file, name, manual.export(course, layout, args.file, every=args.all), args.all)
        return 0
    done = manual.import_grades(course, args.course_dir, name, args.file)
    terminal.manual_imported(args.file, done)
    if done.problems:
        return USAGE
    publish_and_report(layout)
    return 0


def _manual_arguments(p):
    p.add_argument("action", choices=["export", "import"], help="export: write what waits for a hand grade; "
                                                                "import: read the filled file into the gradebook")
    p.add_argument("file", help="the CSV file (student, notebook, cell, score, max_score, comment)")
    p.add_argument("--assignment", help="the assignment (default: the course's only one)")
    p.add_argument("--all", action="store_true", help="export: every answer graded by hand, with its score as it "
                                                      "stands, not only those still waiting")


def _add_limits(p):
    from grader.core.limits import Limits
    d = Limits()
    p.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                   help="seconds one cell may run (default: the course's c.ExecutePreprocessor.timeout, as stock "
                        f"autograde uses it, else {d.cell_timeout:g})")
    p.add_argument("--budget", type=float, default=None, metavar="S",
                   help="seconds all cells of one notebook may run together (default: twice the cell timeout, at "
                        f"least {d.notebook_budget:g})")
    p.add_argument("--memory-mb", type=int, default=d.memory_mb, metavar="MB",
                   help=f"memory cap of each notebook's process (default {d.memory_mb})")
    p.add_argument("--output-chars", type=int, default=d.output_chars, metavar="N",
                   help=f"characters of output kept per notebook (default {d.output_chars})")


# (name, function, help, example, how to add its arguments): the engine's commands.
def _grade_arguments(p):
    p.add_argument("assignment", nargs="?", help="the assignment, a folder of source/ (default: every assignment "
                                                 "with submissions)")
    p.add_argument("--student", action="append", metavar="ID",
                   help="grade only this student; repeat it for more (default: everyone in submitted/)")
    p.add_argument("--force", action="store_true",
                   help="grade again even if unchanged (a regrade that fails keeps the old result)")
    p.add_argument("--jobs", type=int, default=None,
                   help="parallel workers (default: one per core, each with 4 submissions at least)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="grade on a Dask cluster, e.g. tcp://10.0.0.5:8786 (default: this machine)")
    p.add_argument("--unconfined", action="store_true",
                   help="run student code without the sandbox, with your rights (not recommended: only "
                        "where the kernel cannot sandbox; every report then says so)")
    _add_limits(p)


def _collect_arguments(p):
    p.add_argument("source", help="a folder of notebooks, or a zip downloaded from the LMS")
    p.add_argument("--assignment", help="the assignment they belong to (default: the course's only one)")
    p.add_argument("--pattern", help="regular expression for the file names, with named groups "
                                     "student_id and file_id (default: see the README)")


def _remove_arguments(p):
    p.add_argument("student", nargs="+", help="the student's id, as the gradebook has it")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (the gradebook is still backed "
                                                      "up first)")


def _copies_arguments(p):
    p.add_argument("assignment", nargs="?", help="the assignment (default: every assignment with submissions)")
    p.add_argument("--known", metavar="FOLDER", help="known solutions (.ipynb, .py) to compare against (default: "
                                                      "known_solutions/<assignment>/ in the course, if there)")


def _one_assignment(help_text):
    return lambda p: p.add_argument("assignment", nargs="?", help=help_text)


COMMANDS: list[Command] = [
    ("collect", cmd_collect, "lay out submissions from a folder or an LMS zip as submitted/<student>/<assignment>/",
     "collect ~/Downloads/submissions.zip --assignment ps1", _collect_arguments),
    ("grade", cmd_grade, "grade new and changed submissions in parallel, then publish",
     "grade ps1 --student alice --student bob --force", _grade_arguments),
    ("publish", cmd_publish, "rewrite the grades CSVs, class report and feedback pages from the gradebook "
                             "(after grading by hand in formgrader); grades nothing", "publish ps1",
     _one_assignment("the assignment (default: every assignment with submissions)")),
    ("release", cmd_release, "regenerate release/ from source/ with nbgrader generate_assignment", "release ps1",
     _one_assignment("the assignment (default: every assignment in source/)")),
    ("copies", cmd_copies, "compare every pair of students (and known solutions) for signs of copying; writes "
                           "the copy report for you alone, changes no score; grade writes it too",
     "copies ps1 --known ~/old-solutions", _copies_arguments),
    ("remove-students", cmd_remove_students, "take students out of the course: their grades in the gradebook "
                                             "(backed up first), their submitted, autograded and feedback folders, "
                                             "and every output", "remove-students alice bob", _remove_arguments),
    ("manual-grades", cmd_manual_grades, "grade by hand without a browser: export what waits for a hand grade "
                                         "as a CSV, import the filled CSV into the gradebook as formgrader does",
     "manual-grades export waiting.csv --assignment ps1", _manual_arguments),
    ("nbgrader-config", cmd_nbgrader_config, "make nbgrader's own autograde and generate_feedback (and formgrader's "
                                             "buttons) grade with the kit and write its feedback, or stock again",
     "nbgrader-config enable", lambda p: p.add_argument("action", choices=["enable", "disable", "show"])),
]


COURSE_DIR_HELP = ("course directory holding nbgrader_config.py, source/ and release/ (default: the course that "
                   "holds the current folder); before or after the command")


def build_parser(prog: str | None = None, description: str | None = None, commands: Sequence[Command] = (),
                 course_title: str = "this course's own commands", tools: Sequence[Command] = ()
                 ) -> argparse.ArgumentParser:
    """The command line: `commands` (same form as COMMANDS) come first, then the engine's own and `tools` (the
    measuring tools' commands, grader_eval.commands). --help lists the engine's commands and the tools' (any
    assignment), then the course's own under `course_title`."""
    import textwrap

    invoked = prog or "python -m grader"
    description = description or " ".join(__doc__.split("\n\n")[0].split())
    mine = {name for name, *_ in commands}
    engine = [c if c[0] not in mine else next(m for m in commands if m[0] == c[0]) for c in [*COMMANDS, *tools]]
    own = [c for c in commands if c[0] not in {name for name, *_ in [*COMMANDS, *tools]}]

    def listing(title, chosen):
        lines = [f"{title}:"]
        for name, _, text, *_ in chosen:
            wrapped = textwrap.wrap(text, 78 - 20)
            lines += [f"  {name:17} {wrapped[0]}"] + [f"  {'':17} {more}" for more in wrapped[1:]]
        return "\n".join(lines)

    epilog = "\n\n".join([listing("the grader's commands (any nbgrader assignment of the course)", engine)]
                          + ([listing(course_title, own)] if own else [])
                          + ["Exit codes: 0 all well, 1 needs attention, 2 bad usage, 130 interrupted."])
    parser = argparse.ArgumentParser(prog=invoked, description=textwrap.fill(description, 78), epilog=epilog,
                                     usage=f"{invoked} [-h] [--version] [--course-dir COURSE_DIR] command ...",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--course-dir", default=None, help=COURSE_DIR_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command", help=argparse.SUPPRESS,
                                prog=invoked)
    for name, func, text, example, arguments in [*engine, *own]:
        p = sub.add_parser(name, help=text, description=text, epilog=f"Example: {invoked} {example}")
        p.set_defaults(func=func)
        # The same option after the command: it sets the value only when given there.
        p.add_argument("--course-dir", default=argparse.SUPPRESS, help=COURSE_DIR_HELP)
        arguments(p)
    # For mistakes answered with the command's own usage (see main): an attribute of the kit's, not argparse's.
    parser.commands = sub.choices  # type: ignore[attr-defined]
    return parser


def _version():
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("rnn-course-kit")
    except PackageNotFoundError:
        return "(not installed)"


def _check_args(args, home=None, prog=None):
    """Bad flag values and a missing course folder, said before any work starts. `home`: the course that a
    course's own commands (marked `uses_home`) use when run outside any course."""
    if args.course_dir is None:
        found = coursedir.find_course()
        if found is None and not (home and getattr(args, "uses_home", False)):
            raise KitError(f"no course here: neither {Path.cwd()} nor a folder above it holds nbgrader_config.py. "
                           "Run the command inside the course directory, or give it with --course-dir"
                           + (f" (this kit's own course is {home})." if home else "."))
        args.course_dir = str(found or home)
    if home and getattr(args, "uses_home", False):
        theirs = sorted(p.name for p in (Path(home) / "source").iterdir() if p.is_dir())
        if not all((Path(args.course_dir) / "source" / name).is_dir() for name in theirs):
            raise KitError(f"`{args.command}` belongs to this kit's own course ({home}, with "
                           f"source/{'/, source/'.join(theirs)}/), and {args.course_dir} is another: run it in {home}.")
    coursedir.choose(args.course_dir, prog or "python -m grader")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise KitError(f"--jobs must be at least 1, not {args.jobs} (leave it out for the default).")
    folder = Path(args.course_dir)
    if not folder.is_dir():
        raise KitError(f"no course directory at {folder}: --course-dir must name the folder that holds "
                       "nbgrader_config.py, source/ and release/.")
    if not (folder / "nbgrader_config.py").is_file():
        raise KitError(f"{folder / 'nbgrader_config.py'} is missing: --course-dir must name a course directory "
                       "(copy the one at the top of this repository to start one).")
    if args.command in ("grade", "publish", "collect", "release", "demo", "remove-students", "forget-demo"):
        from grader.course import gradebook
        gradebook.check(folder)


def _say_nothing(unraisable: Any) -> None:
    """sys.unraisablehook once the command was interrupted (see main)."""


def main(argv: Sequence[str] | None = None, prog: str | None = None, description: str | None = None,
         commands: Sequence[Command] = (), home: Path | str | None = None,
         course_title: str = "this course's own commands", tools: Sequence[Command] = ()) -> int:
    """Run the command line; returns the exit code. The arguments after `argv` let a course add its own
    commands (see build_parser); `home` is the course its commands marked `uses_home` fall back to, and the only
    course they run in (or a copy of it)."""
    import signal
    from sqlalchemy.exc import DatabaseError

    from grader.core import interrupts

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, interrupts.on_interrupt)  # from here on, Ctrl-C is handled below
    python_hook = sys.unraisablehook
    # ...and not also printed by Python when it lands in a garbage-collection callback.
    sys.unraisablehook = lambda u: None if isinstance(u.exc_value, KeyboardInterrupt) else python_hook(u)

    parser = build_parser(prog, description, commands, course_title, tools)
    args, extra = parser.parse_known_args(argv)
    if extra:  # a mistyped option of a command: answered with that command's usage, not the top level's
        command = parser.commands[args.command]  # type: ignore[attr-defined]  # set by build_parser
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        _check_args(args, home, prog)
        code = args.func(args) or 0
        if code != INTERRUPTED:
            interrupts.check()  # a Ctrl-C that Python dropped (see interrupts.on_interrupt) still counts
        else:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # see below
            sys.unraisablehook = _say_nothing
        return code
    except (KitError, FileNotFoundError) as error:
        terminal.error(str(error))
        return USAGE
    except DatabaseError as error:  # a damaged file, or not a gradebook: nothing was written to it
        database = Path(args.course_dir) / "gradebook.db"
        try:
            from grader.course import gradebook
            database = gradebook.database_file(args.course_dir) or database
        except Exception:
            pass  # the config itself cannot be read: name the usual file
        if "locked" in str(error.orig):  # held by another program past the wait, in the middle of a batch
            from grader.course import gradebook
            terminal.error(gradebook.locked_message(database))
            return USAGE
        terminal.error(f"the gradebook {database} cannot be read ({str(error.orig)[:120]}). It is damaged or is not "
                       "an nbgrader gradebook; it was left as it is. Restore a copy of it, or move it aside and run "
                       f"`{coursedir.hint('release')}` to start a new one (then grade again).")
        return USAGE
    except KeyboardInterrupt:
        # Handled: a second SIGINT still pending (held back while a process started, or delivered to
        # another thread) must not turn exit 130 into a death by signal during shutdown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # An import that Ctrl-C cut short can leave half-made objects whose clean-up fails when Python exits:
        # nothing of that is the instructor's to read.
        sys.unraisablehook = _say_nothing
        terminal.interrupted()
        return INTERRUPTED
