"""Command line: python -m grader <command>. Each command calls one function of the package."""
import argparse
import shutil
import sys
from pathlib import Path

from . import course


def cmd_release(args):
    from . import release
    path = release.generate(args.course_dir)
    print(f"Release written to {path}")


def cmd_figures(args):
    from . import figures
    for path in figures.draw_all():
        print(f"wrote {path}")


def cmd_checks_data(args):
    from . import checks_data
    print(f"wrote {checks_data.write()}")


def cmd_grade(args):
    from . import autograde
    students = args.students or autograde.submitted_students(args.course_dir)
    if not students:
        raise SystemExit(f"error: nothing to grade: {Path(args.course_dir) / 'submitted'} holds no "
                         f"<student>/{course.ASSIGNMENT}/ folders. Put each submission at "
                         f"submitted/<student>/{course.ASSIGNMENT}/{course.NOTEBOOK}.ipynb.")
    results = autograde.grade(args.course_dir, students)
    print()
    print(autograde.score_table(results, autograde.max_scores_of()))
    return 0 if all(r.status == "graded" for r in results) else 1


def cmd_demo(args):
    """Regenerate the release, build the sample submissions, autograde them, print the table."""
    from . import autograde, release, submissions
    course_dir = Path(args.course_dir)
    print("1. Regenerating the release with nbgrader generate_assignment ...")
    release.generate(course_dir)
    print(f"2. Writing the sample submissions to {course_dir / 'submitted'}/ ...")
    samples = submissions.sample_submissions()
    for student, (what, nb) in samples.items():
        shutil.rmtree(course_dir / "autograded" / student, ignore_errors=True)
        submissions.write(nb, course_dir, student)
        print(f"   {student:16} {what}")
    print("3. Autograding them with nbgrader autograde into the SQLite gradebook ...")
    results = autograde.grade(course_dir, list(samples))
    print()
    print(autograde.score_table(results, autograde.max_scores_of()))
    print(f"\nGradebook: {course_dir / 'gradebook.db'}   Graded notebooks: {course_dir / 'autograded'}/")
    print("The broken sample is expected to be reported, not graded: the others are graded regardless.")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.splitlines()[0])
    parser.add_argument("--course-dir", default=str(course.COURSE_DIR),
                        help="course directory holding nbgrader_config.py, source/ and release/ "
                             "(default: this repository)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, func, text in [
        ("demo", cmd_demo, "regenerate the release and autograde the bundled sample submissions"),
        ("release", cmd_release, "regenerate release/ from source/ with nbgrader generate_assignment"),
        ("grade", cmd_grade, "autograde the submissions in submitted/ and print the score table"),
        ("figures", cmd_figures, "redraw the notebook's figures into source/<assignment>/images/"),
        ("checks-data", cmd_checks_data, "rebuild source/<assignment>/checks_data.json from the master"),
    ]:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=func)
        if name == "grade":
            p.add_argument("students", nargs="*", help="student ids to grade (default: everyone in submitted/)")
    return parser


def main(argv=None):
    from .release import KitError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (KitError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
