"""`rnn-grader`: the engine's commands (grader/cli.py), plus this course's own.

The course's commands build this assignment (figures, self-check data), show the
grader on the bundled sample submissions (demo), and time it on a class made of
this assignment's typical mistakes (benchmark). Run outside any course, they use the
repository's own; in a course without this assignment they refuse, in one line.
"""
import shutil
import sys
from pathlib import Path

from grader import cli as engine
from grader import terminal
from grader.course import coursedir
from grader_eval import commands as tools

from . import ASSIGNMENT, HOME

DESCRIPTION = ("Build and grade 'Building your Recurrent Neural Network - Step by Step', and grade any other "
               "nbgrader assignment of the course: each submission in a sandbox, in parallel, into nbgrader's "
               "gradebook.")


def cmd_demo(args):
    """Regenerate the release, write the sample submissions, grade them, print the table."""
    from grader.core.limits import Limits
    from grader.course import release

    from . import samples
    course_dir = Path(args.course_dir)
    print("1. Regenerating the release with nbgrader generate_assignment ...")
    release.generate(course_dir, ASSIGNMENT)
    print(f"2. Writing the sample submissions to {course_dir / 'submitted'}/ ...")
    made = samples.sample_submissions()
    _remember_demo(course_dir, made)
    for student, (what, nb) in made.items():
        shutil.rmtree(course_dir / "autograded" / student, ignore_errors=True)
        samples.write(nb, course_dir, student)
        print(f"   {student:18} {what}")
    limits = Limits(cell_timeout=5, notebook_budget=10)
    print("3. Grading them in parallel with the kit's grader, into the SQLite gradebook "
          f"(demo limits: {limits.cell_timeout:g} s a cell, {limits.notebook_budget:g} s a notebook) ...")
    code = engine.grade_and_report(course_dir, ASSIGNMENT, list(made), force=True, limits=limits)
    print("\nThe samples include broken ones on purpose: each is reported with its reason, and "
          "the others are graded regardless.\n"
          f"Before grading a real class here, take the samples out: `{coursedir.hint('forget-demo')}`.")
    return 0 if code == engine.NEEDS_ATTENTION else code


DEMO_RECORD = Path("autograded") / ".demo-students"  # the students the demo made, one per line


def _remember_demo(course_dir, made):
    record = course_dir / DEMO_RECORD
    record.parent.mkdir(exist_ok=True)
    known = set(record.read_text().split()) if record.is_file() else set()
    record.write_text("".join(f"{s}\n" for s in sorted(known | set(made))))


def cmd_forget_demo(args):
    """Take the demo's sample students out of the gradebook and every output; nobody else is touched."""
    from grader.app import removal
    record = Path(args.course_dir) / DEMO_RECORD
    students = record.read_text().split() if record.is_file() else []
    if not students:
        print(f"No demo students to forget: {record} lists none (`demo` writes it).")
        return 0
    print(f"Taking out the demo's sample students: {', '.join(students)}")
    terminal.removed(removal.remove_students(args.course_dir, students))
    record.unlink()
    print(f"The course is ready for a real class: `{coursedir.hint('collect <download>')}`, then "
          f"`{coursedir.hint('grade')}`.")
    return 0


def cmd_figures(args):
    """Into the course's own copy of the assignment (the kit's, or a copy of it), never another's."""
    from . import figures
    for path in figures.draw_all(Path(args.course_dir) / "source" / ASSIGNMENT / "images"):
        print(f"wrote {path}")


def cmd_checks_data(args):
    from . import NOTEBOOK, checks_data
    source = Path(args.course_dir) / "source" / ASSIGNMENT
    print(f"wrote {checks_data.write(source / 'checks_data.json', source / f'{NOTEBOOK}.ipynb')}")


def cmd_benchmark(args):
    """This assignment with the class of typical mistakes (docs/ gets the results); any other with the engine's."""
    from . import samples
    if (args.assignment or ASSIGNMENT) == ASSIGNMENT and Path(args.course_dir).resolve() == HOME:
        args.assignment = ASSIGNMENT
        return tools.cmd_benchmark(args, made=None if args.kit_only else samples.benchmark_class(args.n),
                                    docs=args.docs or HOME / "docs", make_class=samples.benchmark_class)
    return tools.cmd_benchmark(args)


def cmd_copies_benchmark(args):
    """The copy report against copydetect and Dolos on the evaluation class, and on a class of `n` notebooks."""
    from grader.course import assignments
    from . import copy_eval
    layout = assignments.Layout(Path(args.course_dir), ASSIGNMENT)
    measured = copy_eval.benchmark(layout, docs=HOME / "docs" if args.docs else None, n=args.n)
    print(f"{'tool':45} {'AUC':>6} {'AP':>6} {'P@R':>6}  AUC per level (renamed, restructured, disguised, partial)")
    for tool, row in measured["tools"].items():
        print(f"{tool:45} {row['auc']:6.3f} {row['ap']:6.3f} {row['p_at_r']:6.3f}  "
              f"{row['auc_renamed']:.3f} {row['auc_restructured']:.3f} {row['auc_disguised']:.3f} "
              f"{row['auc_partial']:.3f}  ({row['seconds']:.1f} s)")
    scale = measured["scale"]
    print(f"{scale['students']} students: set-up {scale['set_up_seconds']} s, read, fingerprint and compare "
          f"{scale['compare_seconds']} s, peak {scale['peak_mb']} MB")
    return 0


def _copies_benchmark_arguments(p):
    p.add_argument("-n", type=int, default=1000, help="students in the scale run (default 1000)")
    p.add_argument("--docs", action="store_true", help="write docs/copies_benchmark.json and .png")


def _home(arguments=None):
    def add(p):
        p.set_defaults(uses_home=True)
        if arguments:
            arguments(p)
    return add


COMMANDS = [
    ("demo", cmd_demo, "regenerate the release and grade the bundled sample submissions", "demo", _home()),
    ("forget-demo", cmd_forget_demo, "take the demo's sample students out of the gradebook and every output "
                                     "(backed up first; nobody else is touched), before grading a real class",
     "forget-demo", _home()),
    ("copies-benchmark", cmd_copies_benchmark, "measure the copy report against copydetect and Dolos on an "
                                               "evaluation class of copies, and its time on a class of 1000",
     "copies-benchmark --docs", _home(_copies_benchmark_arguments)),
    ("figures", cmd_figures, f"redraw the notebook's figures into source/{ASSIGNMENT}/images/", "figures", _home()),
    ("checks-data", cmd_checks_data, f"rebuild source/{ASSIGNMENT}/checks_data.json from the master", "checks-data",
     _home()),
    ("benchmark", cmd_benchmark, "time stock nbgrader autograde against the kit's grader, side by side (this "
                                 "assignment: a class of its typical mistakes, results in docs/)", "benchmark -n 50",
     _home(tools.benchmark_arguments)),
]


def main(argv=None):
    prog = "rnn-grader" if Path(sys.argv[0] or "").name == "rnn-grader" else "python -m rnn_course"
    return engine.main(argv, prog=prog, description=DESCRIPTION, commands=COMMANDS, home=HOME,
                       course_title=f"this course's own commands ({ASSIGNMENT} only)", tools=tools.COMMANDS)
