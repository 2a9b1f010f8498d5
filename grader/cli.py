"""Grade a course's notebooks in parallel, each in a sandbox, into nbgrader's gradebook; publish grades,
reports and feedback from it.

Exit codes: 0 all is well; 1 something needs an instructor's attention (a submission
not graded normally, a file not matched at intake); 2 bad usage or set-up; 130 interrupted.
"""
import argparse
import shutil
import sys
from pathlib import Path

from . import course
from .plain_text import for_terminal
from .release import KitError

NEEDS_ATTENTION = 1
INTERRUPTED = 130


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


def _limits(args):
    from .limits import Limits
    for name in ("cell_timeout", "budget", "memory_mb", "output_chars"):
        if getattr(args, name) <= 0:
            raise KitError(f"--{name.replace('_', '-')} must be positive, not {getattr(args, name)}")
    return Limits(args.cell_timeout, args.budget, args.memory_mb, args.output_chars)


def grade_and_report(course_dir, students=None, force=False, jobs=None, scheduler=None, limits=None,
                     confine=True):
    """Grade, publish the outputs from the gradebook, print the summary; return the exit code."""
    from . import batch, reports
    from .reports import counted
    from .limits import Limits

    course_dir = Path(course_dir)
    if not confine:
        print("WARNING: --unconfined: student code will run with your rights, outside the sandbox. Use it only "
              "to grade trusted notebooks on a machine that cannot sandbox.", file=sys.stderr)
    done, assignment = batch.grade_batch(course_dir, students, force, jobs, scheduler, limits or Limits(),
                                         progress=reports.Progress, confine=confine)
    published = publish_and_report(course_dir, assignment)
    shown = published.results
    rate = f" ({len(done.graded) / done.seconds:.1f} per second)" if done.graded and done.seconds else ""
    print(f"\nGraded {counted(len(done.graded), 'submission')} in {done.seconds:.1f} s{rate}; "
          f"{len(done.unchanged)} unchanged since their last grading {'was' if len(done.unchanged) == 1 else 'were'} "
          "not graded again"
          + (f" (use `{course.hint('grade --force')}` to regrade them)." if done.unchanged else "."))
    for note in done.notes:
        print(f"Note: {note}")
    for student, why in sorted(done.kept.items()):
        print(for_terminal(f"KEPT PREVIOUS RESULT for {student}: {why}"))
    if done.misplaced:
        print(f"\nNOT GRADED ({counted(len(done.misplaced), 'notebook or folder', 'notebooks or folders')} in "
              "submitted/ that the grader does not read):")
        for path, fix in done.misplaced:
            print(for_terminal(f"  {path}: {fix}"))
    if done.pending:
        print(f"\nInterrupted: {counted(len(done.pending), 'submission')} "
              f"{'was' if len(done.pending) == 1 else 'were'} not graded. Run the same command again "
              "to grade them; the ones already graded are kept.", file=sys.stderr)
        return INTERRUPTED
    if done.pending or done.kept or done.misplaced or published.unwritten \
            or any(reports.needs_attention(r) for r in shown.values()):
        print("\nSome submissions need your attention: see the status column and the class report.")
        return NEEDS_ATTENTION
    return 0


def publish_and_report(course_dir, assignment=None):
    """Write the CSV, the class report and the feedback pages from the gradebook; print the table."""
    from . import batch, publish, reports

    assignment = assignment or batch.load_assignment(course_dir)
    done = publish.publish(course_dir, assignment)
    shown, csv_path, report = done.results, done.csv, done.report
    print()
    print(reports.score_table({s: shown[s] for s in sorted(shown)}, assignment))
    for student, why in sorted(done.unwritten.items()):
        print(for_terminal(f"FEEDBACK PAGE NOT WRITTEN for {student}: {why}. Run `{course.hint('publish')}` again "
                           "once it is fixed; everything else is published."))
    print(f"\nScores are the gradebook's ({course.nbgrader_api(course_dir).coursedir.db_url}): manual grades, "
          "extra credit and comments from formgrader included, as `nbgrader export` shows them.\n"
          f"Grades CSV:     {csv_path}\nClass report:   {report}\n"
          f"Feedback pages: {Path(course_dir).resolve() / publish.FEEDBACK_DIR}/<student>/{course.ASSIGNMENT}/"
          f"{course.NOTEBOOK}.html (hand them out with `nbgrader release_feedback {course.ASSIGNMENT}`, or "
          "through your LMS)")
    setup = publish.exchange_setup(course.nbgrader_api(course_dir))
    if setup:
        print(f"nbgrader's exchange, where release_feedback puts them, does not exist yet (or is not writable). "
              f"Create it once, for you and your students:\n    {setup}\nor set c.Exchange.root in "
              "nbgrader_config.py to a folder they all can write.")
    return done


def cmd_publish(args):
    done = publish_and_report(args.course_dir)
    return NEEDS_ATTENTION if done.unwritten or any(r is None or r.awaiting_manual_grade
                                                    for r in done.results.values()) else 0


def cmd_grade(args):
    return grade_and_report(args.course_dir, args.students, args.force, args.jobs, args.scheduler, _limits(args),
                            confine=not args.unconfined)


def cmd_collect(args):
    from . import intake
    found = intake.collect(args.source, args.course_dir, pattern=args.pattern)
    print(for_terminal(intake.describe(found, args.course_dir)))
    return NEEDS_ATTENTION if found.unmatched else 0


def cmd_benchmark(args):
    from . import benchmark
    if args.idle:
        return benchmark.idle_only(args.n, args.jobs)
    return benchmark.main(args.n, args.workdir, args.cell_timeout, args.jobs)


def cmd_demo(args):
    """Regenerate the release, write the sample submissions, grade them, print the table."""
    from . import release, submissions
    course_dir = Path(args.course_dir)
    print("1. Regenerating the release with nbgrader generate_assignment ...")
    release.generate(course_dir)
    print(f"2. Writing the sample submissions to {course_dir / 'submitted'}/ ...")
    samples = submissions.sample_submissions()
    for student, (what, nb) in samples.items():
        shutil.rmtree(course_dir / "autograded" / student, ignore_errors=True)
        submissions.write(nb, course_dir, student)
        print(f"   {student:18} {what}")
    from .limits import Limits
    limits = Limits(cell_timeout=5, notebook_budget=10)
    print("3. Grading them in parallel with the kit's grader, into the SQLite gradebook "
          f"(demo limits: {limits.cell_timeout:g} s a cell, {limits.notebook_budget:g} s a notebook) ...")
    code = grade_and_report(course_dir, list(samples), force=True, limits=limits)
    print("\nThe samples include broken ones on purpose: each is reported with its reason, and "
          "the others are graded regardless.")
    return 0 if code == NEEDS_ATTENTION else code


def _add_limits(p):
    from .limits import Limits
    d = Limits()
    p.add_argument("--cell-timeout", type=float, default=d.cell_timeout, metavar="S",
                   help=f"seconds one cell may run (default {d.cell_timeout:g})")
    p.add_argument("--budget", type=float, default=d.notebook_budget, metavar="S",
                   help=f"seconds all cells of one notebook may run together (default {d.notebook_budget:g})")
    p.add_argument("--memory-mb", type=int, default=d.memory_mb, metavar="MB",
                   help=f"memory cap of each notebook's process (default {d.memory_mb})")
    p.add_argument("--output-chars", type=int, default=d.output_chars, metavar="N",
                   help=f"characters of output kept per notebook (default {d.output_chars})")


def build_parser():
    invoked = "rnn-grader" if Path(sys.argv[0] or "").name == "rnn-grader" else "python -m grader"
    parser = argparse.ArgumentParser(prog=invoked, description=" ".join(__doc__.split("\n\n")[0].split()),
                                     epilog="Exit codes: 0 all well, 1 needs attention, 2 bad usage, "
                                            "130 interrupted.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--course-dir", default=None,
                        help="course directory holding nbgrader_config.py, source/ and release/ "
                             "(default: the course that holds the current folder)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, func, text, example in [
        ("demo", cmd_demo, "regenerate the release and grade the bundled sample submissions", "demo"),
        ("collect", cmd_collect, "lay out submissions from a folder or an LMS zip as submitted/<student>/",
         "collect ~/Downloads/submissions.zip"),
        ("grade", cmd_grade, "grade new and changed submissions in parallel, then publish", "grade alice bob --force"),
        ("publish", cmd_publish, "rewrite the grades CSV, class report and feedback pages from the gradebook "
                                 "(after grading by hand in formgrader); grades nothing", "publish"),
        ("release", cmd_release, "regenerate release/ from source/ with nbgrader generate_assignment", "release"),
        ("benchmark", cmd_benchmark, "time stock nbgrader autograde against the kit's grader", "benchmark -n 50"),
        ("figures", cmd_figures, "redraw the notebook's figures into source/<assignment>/images/", "figures"),
        ("checks-data", cmd_checks_data, "rebuild source/<assignment>/checks_data.json from the master",
         "checks-data"),
    ]:
        p = sub.add_parser(name, help=text, description=text, epilog=f"Example: {invoked} {example}")
        p.set_defaults(func=func)
        if name == "grade":
            p.add_argument("students", nargs="*", help="student ids to grade (default: everyone in submitted/)")
            p.add_argument("--force", action="store_true",
                           help="grade again even if unchanged (a regrade that fails keeps the old result)")
            p.add_argument("--jobs", type=int, default=None, help="parallel workers (default: one per core)")
            p.add_argument("--scheduler", metavar="ADDRESS",
                           help="grade on a Dask cluster, e.g. tcp://10.0.0.5:8786 (default: this machine)")
            p.add_argument("--unconfined", action="store_true",
                           help="run student code without the sandbox, with your rights (not recommended: only "
                                "where the kernel cannot sandbox; every report then says so)")
            _add_limits(p)
        if name == "collect":
            p.add_argument("source", help="a folder of notebooks, or a zip downloaded from the LMS")
            p.add_argument("--pattern", help="regular expression for the file names, with named groups "
                                             "student_id and file_id (default: see the README)")
        if name == "benchmark":
            p.add_argument("-n", type=int, default=200, help="submissions in the batch (default 200)")
            p.add_argument("--workdir", default=None, help="where to build the two course copies (default: a "
                                                           "temporary folder)")
            p.add_argument("--cell-timeout", type=float, default=10.0,
                           help="per-cell timeout for both graders (default 10)")
            p.add_argument("--jobs", type=int, default=None, help="the kit's workers (default: one per core)")
            p.add_argument("--idle", action="store_true",
                           help="only time a `grade` with nothing to do, after grading the batch once")
    parser.commands = sub.choices  # for mistakes answered with the command's own usage (see main)
    return parser


def _version():
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("rnn-course-kit")
    except PackageNotFoundError:
        return "(not installed)"


def _check_args(args):
    """Bad flag values and a missing course folder, said before any work starts."""
    if args.course_dir is None:
        found = course.find_course()
        if found is None and args.command not in ("benchmark", "figures", "checks-data"):
            raise KitError(f"no course here: neither {Path.cwd()} nor a folder above it holds nbgrader_config.py. "
                           "Run the command inside the course directory, or give it with --course-dir "
                           f"(this kit's own course is {course.COURSE_DIR}).")
        args.course_dir = str(found or course.COURSE_DIR)
    course.choose(args.course_dir)
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise KitError(f"--jobs must be at least 1, not {args.jobs} (leave it out for one worker per core).")
    folder = Path(args.course_dir)
    if not folder.is_dir():
        raise KitError(f"no course directory at {folder}: --course-dir must name the folder that holds "
                       "nbgrader_config.py, source/ and release/.")
    if args.command != "benchmark" and not (folder / "nbgrader_config.py").is_file():
        raise KitError(f"{folder / 'nbgrader_config.py'} is missing: --course-dir must name a course directory "
                       "(copy the one at the top of this repository to start one).")
    if args.command in ("grade", "publish", "collect", "release", "demo"):
        from . import gradebook
        gradebook.check(folder)


def main(argv=None):
    import signal
    from sqlalchemy.exc import DatabaseError

    from . import warm

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, warm.on_interrupt)  # from here on, Ctrl-C is handled below
    python_hook = sys.unraisablehook
    # ...and not also printed by Python when it lands in a garbage-collection callback.
    sys.unraisablehook = lambda u: None if isinstance(u.exc_value, KeyboardInterrupt) else python_hook(u)

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # a mistyped option of a command: answered with that command's usage, not the top level's
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        _check_args(args)
        code = args.func(args) or 0
        if code != INTERRUPTED:
            warm.check_interrupt()  # a Ctrl-C that Python dropped (see warm.on_interrupt) still counts
        else:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # see below
        return code
    except (KitError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except DatabaseError as error:  # a damaged file, or not a gradebook: nothing was written to it
        database = Path(args.course_dir) / "gradebook.db"
        if "locked" in str(error.orig):  # held by another program past the wait, in the middle of a batch
            from . import gradebook
            print(f"error: {gradebook.locked_message(database)}", file=sys.stderr)
            return 2
        print(f"error: the gradebook {database} cannot be read ({str(error.orig)[:120]}). It is damaged or is not "
              "an nbgrader gradebook; it was left as it is. Restore a copy of it, or move it aside and run "
              f"`{course.hint('release')}` to start a new one (then grade again).", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Handled: a second SIGINT still pending (held back while a process started, or delivered to
        # another thread) must not turn exit 130 into a death by signal during shutdown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("\nInterrupted. Nothing graded so far is lost: run the same command again to finish.",
              file=sys.stderr)
        return INTERRUPTED
