"""Batch grading: find what needs grading, grade it in parallel, write every result once.

The flow of `grade_batch`:
1. the assignment's master cells come from the gradebook, its other files from source/
   (assignments.py says where each of its folders is);
2. every submitted/<student>/<assignment>/ folder is read and fingerprinted;
3. a submission is graded again only if it is new, changed, graded against another
   master, missing from the gradebook, or if --force says so;
4. a local process pool (default) or a Dask cluster runs `grade_submission` on each;
5. this process alone writes each result as it arrives: gradebook, then
   autograded/<student>/<assignment>/ (graded notebook, result record, written
   last). A batch killed midway has written whole results only, and the next
   run grades the rest. publish.py then writes what people read, from the gradebook.
"""
from __future__ import annotations

import dataclasses
import glob
import html
import itertools
import json
import os
import pickle
import shlex
import shutil
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from grader.core import hidden, interrupts, model, notebook, scratch, student_files
from grader.core.errors import KitError, SandboxFailure
from grader.core.files import write_atomically
from grader.core.limits import Limits
from grader.core.progress import Progress
from grader.core.model import AssignmentSpec, FAILURES, GRADED, NotebookTask, Result, Submission
from grader.core.plain_text import counted, student_id_problem, unusable_name
from grader.core.scratch import sweep_scratch
from grader.core.student_files import shown
from grader.course import assignments, coursedir, gradebook, solutions
from grader.grade import setup_cache
from grader.judge import grading, verdict
from grader.judge.grading import grade_submission, lap, not_graded, submission_with_master_files
from grader.run import memory, sandbox, warm
from grader.run.sandbox import write_files

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nbformat import NotebookNode

RESULT_FILE = ".kit_result.json"
# A worker costs about a second of CPU before its first submission (its start, its own fork server's imports): by
# default each one is given at least this many, and a batch of no more is graded by the grader itself (_alone).
SUBMISSIONS_PER_WORKER = 4
IN_FLIGHT_PER_WORKER = 4  # submissions sent ahead to each worker: enough to keep it busy, few enough to hold
# What the fork server imports for this stage's pool workers, beside the sandbox's runner: the grading unit.
_PRELOAD = (grade_submission.__module__,)


@dataclass
class Batch:
    """What a run did, for the summary and the exit code."""
    results: dict[str, Result] = field(default_factory=dict)  # student -> Result (this run's, or the kept one)
    graded: list[str] = field(default_factory=list)     # students graded in this run
    unchanged: list[str] = field(default_factory=list)  # students whose stored result was still current
    kept: dict[str, str] = field(default_factory=dict)  # student -> why a failed regrade kept the old result
    pending: list[str] = field(default_factory=list)    # students left ungraded (interrupted run)
    # (path, what to do): notebooks and folders that were not graded
    misplaced: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # what the instructor should know about the run itself
    seconds: float = 0.0
    # stage -> seconds, this run's submissions together (see lap)
    stages: dict[str, float] = field(default_factory=dict)
    # "<role> <pid>" -> MB, the most each process held (memory.peaks)
    peaks: dict[str, float] = field(default_factory=dict)
    workers: str = ""                              # how many sandboxes ran at once, and why (memory.Plan.how)
    spec: AssignmentSpec | None = None             # the assignment graded (with its recorded verdict)

    @property
    def needs_attention(self) -> bool:
        return bool(self.pending or self.kept or self.misplaced
                    or any(r.status != GRADED or r.refused for r in self.results.values()))


# ---------------------------------------------------------------- inputs

def load_assignment(layout: assignments.Layout, limits: Limits = Limits(), confine: bool = True) -> AssignmentSpec:
    """The assignment as plain data, every notebook of it, without the outside verdict's recording (see
    `with_verdict`)."""
    course = coursedir.course_directory(layout.course_dir)
    if not layout.notebooks:
        raise KitError(f"{layout.source_dir} holds no notebook: the assignment's master notebooks go there.")
    source_dir = layout.source_dir
    files = tuple((os.path.relpath(p, source_dir), Path(p).read_bytes())
                  for p in _files(source_dir, course.ignore + ["*.ipynb"]))
    markers = hidden.markers_of(course.config)
    tasks = []
    for name in layout.notebooks:
        release = layout.release(name)
        if not release.exists():
            raise KitError(f"{release} is missing: run `{coursedir.hint('release ' + layout.name)}` first.")
        master_nb = notebook.read(layout.master(name))
        if any(notebook.nbgrader_meta(c).get("grade") for c in master_nb.cells):  # a notebook with nothing to
            _check_kernel(master_nb, layout.master(name))                         # grade runs for its outputs only
        order = [notebook.nbgrader_meta(c).get("grade_id") for c in master_nb.cells]
        release_cells = notebook.read(release).cells
        released = {notebook.nbgrader_meta(c).get("grade_id"): c.source for c in release_cells}
        # The assignment's own text, which a student's notebook may show unchanged (see grading._sanitize).
        text = frozenset(grading.text_digest(c.source) for c in release_cells if c.cell_type != "code")
        cells = gradebook.master_cells(course, layout.name, name, order, released)
        parts = tuple(assignments.parts(master_nb).items())
        tasks.append(NotebookTask(layout.name, name, cells, files, parts, limits, confine=confine,
                                  released_text=text, release=release.read_bytes(), hidden_markers=markers))
    return AssignmentSpec(tuple(tasks))


def _check_kernel(nb, path):
    """The kit runs cells in Python (an IPython shell of its own environment): another kernel's notebook is
    refused, with stock autograde named for it."""
    kernelspec = nb.metadata.get("kernelspec", {})
    language = (kernelspec.get("language") or nb.metadata.get("language_info", {}).get("name") or "python").lower()
    if language != "python":
        raise KitError(f"{path} is written for the {kernelspec.get('name') or language} kernel ({language}); the kit "
                       f"grades Python notebooks only. Grade this assignment with "
                       f"`nbgrader autograde {shlex.quote(path.parent.name)}`.")


def with_verdict(layout: assignments.Layout, spec: AssignmentSpec, helpers: str) -> tuple[AssignmentSpec, list[str]]:
    """(spec, problems): the assignment `spec` with the outside verdict recorded from the master's solution
    (verdict.py), its trusted helper files kept in `helpers`, and what failed in the master's own cells, in
    lines for the instructor (the tests that needed it are judged inside the sandbox)."""
    recorded = verdict.record_apart(
        [(task.cells, notebook.read(layout.master(task.notebook)).cells, task.files, task.hidden_markers)
         for task in spec.notebooks], helpers, spec.notebooks[0].limits.cell_timeout)
    tasks: list[NotebookTask] = []
    problems: list[str] = []
    for task, (plans, inside, failed) in zip(spec.notebooks, recorded):
        tasks.append(dataclasses.replace(task, plans=plans, inside=inside, helpers=helpers))
        problems += [f"{task.notebook}.ipynb: {line}" if spec.several else line for line in failed]
    return AssignmentSpec(tuple(tasks)), problems


def inside_note(spec: AssignmentSpec) -> str | None:
    """The instructor's line on the test cells of `spec` judged inside the sandbox only, or None."""
    inside = [(task.notebook, grade_id, why) for task in spec.notebooks
              for grade_id, why in sorted(task.inside.items())]
    if not inside:
        return None
    return (f"{len(inside)} test cell(s) of {spec.name} cannot be replayed outside the student's process, so "
            "they are judged inside the sandbox only, as stock nbgrader judges them (a determined student could "
            "forge their result): "
            + "; ".join(f"{nb + ': ' if spec.several else ''}{grade_id}: {why}" for nb, grade_id, why in inside))


def run_canary(layout: assignments.Layout, spec: AssignmentSpec) -> tuple[AssignmentSpec, list[str]]:
    """(spec, notes): grade the master's own answers and the unchanged release under the same
    confinement, before any student.

    A sandbox that cannot start, or that makes the master's answers lose every point they score outside it,
    would zero a whole class: that raises KitError, and no submission is graded. A test the grader's replay
    fails on either (honest code) could accuse honest students: it is judged inside the sandbox from then on,
    and the notes say which and why. Points the master's answers lose otherwise are named in the notes, once,
    with where they are lost (in the sandbox only, or outside it too: the master's own doing, as stock would
    grade it).
    """
    delimiters = solutions.delimiters_of(coursedir.course_directory(layout.course_dir).config)
    master = Submission("(canary: the master's solution)", tuple(
        (f"{name}.ipynb", nbformat.writes(solutions.master_answers(layout.master(name), layout.release(name),
                                                                   delimiters)).encode())
        for name in layout.notebooks))
    unchanged = _release_canary(layout)
    result, blank = _canary_grade(spec, master), _canary_grade(spec, unchanged)
    unfollowed = {**blank.replay_failed, **result.replay_failed}
    if unfollowed:
        spec = spec.judged_inside({key: f"the grader's replay of it fails on the master's own answers or "
                                        f"on the release ({why})" for key, why in unfollowed.items()})
        result, blank = _canary_grade(spec, master), _canary_grade(spec, unchanged)
    for graded, who in ((result, "master's own answers"), (blank, "unchanged release")):
        _stop_unless_sound(layout, graded, who)
    notes = _lost_points(layout, spec, result, master)
    if unfollowed:
        notes.append(f"{layout.name}: judged inside the sandbox (the grader's replay does not follow them on honest "
                     "code): " + "; ".join(f"{key}: {why}" for key, why in sorted(unfollowed.items())))
    return spec, notes


def _stop_unless_sound(layout, graded, who):
    """KitError when a canary (`graded`, the `who`) came out as no honest notebook may: the set-up is at fault."""
    if graded.status == model.ERROR or graded.status == model.TAMPERING:
        raise KitError(f"{layout.name}: the {who}, graded under the same confinement as the students, came out "
                       f"'{graded.status}', so no submission was graded: {graded.reason}; " + "; ".join(graded.flags))


def _release_canary(layout):
    """The assignment's notebooks as handed out, as a submission."""
    return Submission("(canary: the release)", tuple((f"{name}.ipynb", layout.release(name).read_bytes())
                                                     for name in layout.notebooks))


def _lost_points(layout, spec, result, master):
    """Notes on the test cells the master's answers (`result`, of the submission `master`) lose, saying where
    they lose them; KitError when the set-up, not the master, makes them score nothing."""
    lost = [t for t in result.tests if t.scored and not t.passed]
    if not lost:
        return []
    # The sandbox, or the master itself? The same answers outside the sandbox tell them apart.
    notes = []
    loose = {(t.notebook, t.grade_id) for t in _canary_grade(spec.replace(confine=False), master).tests
             if t.scored and not t.passed} if spec.confine else {(t.notebook, t.grade_id) for t in lost}
    sandbox_only = [t for t in lost if (t.notebook, t.grade_id) not in loose]
    stopped = result.status in (model.TIMED_OUT, model.CRASHED)  # the limits, or the machine
    if (sandbox_only or stopped) and sum(t.score for t in result.tests) == 0:
        advice = {model.TIMED_OUT: "give the cells more time (--cell-timeout, --budget).",
                  model.CRASHED: "if the notebook ran out of memory, give it more (--memory-mb); if the reason "
                                   "above names the grader itself, please report it with the master notebook."}
        raise KitError(f"{layout.name}: the master's own answers scored nothing"
                       + (" in the sandbox" if spec.confine else "")
                       + (f" ({result.status}: {result.reason})" if stopped else ", and more outside it")
                       + ", so no submission was graded (a set-up that breaks the notebook must not zero a "
                       "class).\n  " + "\n  ".join(f"{_where(spec, t)}: {t.detail or t.message}"
                                                   for t in (sandbox_only or lost)[:10])
                       + f"\n  What to do: {advice[result.status] if stopped else sandbox.advice('run')}")
    for chosen, how in ((sandbox_only, "in the sandbox only (they pass outside it: something the sandbox "
                                       "refuses, such as the network or a file outside the assignment)"),
                        ([t for t in lost if t not in sandbox_only], "in and out of the sandbox (the master "
                                                                     "itself fails them on this machine, as stock "
                                                                     "nbgrader would)")):
        if chosen:
            notes.append(f"{layout.name}: the master's own answers lose {len(chosen)} test cell(s) {how}: "
                         + "; ".join(f"{_where(spec, t)}: {(t.detail or t.message)[:160]}"
                                     for t in chosen[:5])
                         + (f"; and {len(chosen) - 5} more" if len(chosen) > 5 else ""))
    return notes


def _canary_grade(spec, submission):
    try:
        return grade_submission(spec, submission)
    except SandboxFailure as error:
        raise KitError(f"the sandbox cannot be set up on this machine, so no submission was graded.\n"
                       f"  What failed: {error}\n  What to do: {sandbox.advice(error.step)}") from None


def _where(spec, test):
    return f"{test.notebook}/{test.grade_id}" if spec.several else test.grade_id


def _files(folder, ignore):
    from nbgrader.utils import find_all_files
    return sorted(find_all_files(str(folder), ignore))


def misplaced_files(layout: assignments.Layout) -> list[tuple[str, str]]:
    """(path, what to do) for notebooks in submitted/ that the grader will not grade as part of `layout`'s
    assignment: loose ones, and ones in its folders that are not among its notebooks."""
    folder = layout.course_dir / "submitted"
    only = assignments.names(layout.course_dir) == [layout.name]
    target = layout.name if only else "<assignment>"
    found = []
    for path in sorted(folder.glob("*/*.ipynb")) + sorted(folder.glob("*.ipynb")):
        where = shown(path.relative_to(folder.parent))
        student = shown(path.parent.name if path.parent != folder else path.stem)
        found.append((where, f"not in an assignment folder: move it to submitted/{student}/{target}/"
                             f"{_notebook_for(layout, path.name) if only else path.name}"))
    expected = {f"{name}.ipynb" for name in layout.notebooks}
    for path in sorted(folder.glob(f"*/{glob.escape(layout.name)}/*.ipynb")):
        if path.name in expected:
            continue
        where = shown(path.relative_to(folder.parent))
        if len(expected) == 1:
            wanted = next(iter(expected))
            found.append((where, f"a second notebook: only {wanted} is graded; if this is the one to grade, rename it "
                                 f"to {wanted}"))
        else:
            found.append((where, f"not a notebook of {layout.name}, whose notebooks are {', '.join(sorted(expected))}: "
                                 "if it is one of them, rename it"))
    return found


def _notebook_for(layout, name):
    notebooks = [f"{n}.ipynb" for n in layout.notebooks]
    return name if name in notebooks or len(notebooks) != 1 else notebooks[0]


def submitted_students(layout: assignments.Layout, refused: list[tuple[str, str]] | None = None) -> list[str]:
    """The students with a submitted/<student>/<assignment>/ folder. A student or assignment folder that is
    a link, or whose name cannot be used, is left out; `refused`, a list, gets (path, why) for each."""
    folder = layout.course_dir / "submitted"
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    students = []
    for entry in entries:
        inner = Path(entry.path) / layout.name
        if not os.path.lexists(inner):
            continue
        why = unusable_name(entry.name) or student_id_problem(entry.name)
        if why is None and (entry.is_symlink() or inner.is_symlink() or not inner.is_dir()):
            why = "it is a link, or not a folder (links are never followed)"
        if why:
            if refused is not None:
                refused.append((f"submitted/{shown(entry.name)}/{layout.name}", why))
            continue
        students.append(entry.name)
    return students


# Names in a submission folder that are records about it (nbgrader's exchange and the kit's intake
# write them), not the student's work: read with their own rules, never copied into the working copy.


def read_submission(layout: assignments.Layout, student: str) -> Submission:
    """The submission as plain data. Never raises for what is in the folder: whatever breaks a rule of
    student_files.py is left out and listed in `refused`, and a timestamp that is not a date is ignored."""
    folder = layout.submitted(student)
    found = student_files.read_folder(folder, skip=[".ipynb_checkpoints", "__pycache__", "*.pyc",
                                                    *assignments.RECORDS],
                                      first=[f"{name}.ipynb" for name in layout.notebooks])
    refused = list(found.refused)
    text, why = student_files.read_record(folder, "timestamp.txt", limit=200)
    timestamp = (text or "").strip() or None
    if why:
        refused.append(("timestamp.txt", f"{why}; graded without a submission time"))
    elif timestamp and not valid_timestamp(timestamp):
        refused.append(("timestamp.txt", f"{shown(timestamp[:40])!r} is not a date and time; graded without a "
                                         "submission time (no late penalty: check when it was handed in)"))
        timestamp = None
    late = student_files.is_regular_file(folder, assignments.LATE_FILE)
    return Submission(student, tuple(found.files), timestamp, late=late, refused=tuple(refused))


def valid_timestamp(text: str) -> bool:
    """True when nbgrader can read `text` as a submission time (as the gradebook will)."""
    from nbgrader.utils import parse_utc
    try:
        parse_utc(text)
        return True
    except Exception:  # dateutil raises several types (ValueError, OverflowError, ParserError)
        return False


def stored_result(layout: assignments.Layout, student: str) -> Result | None:
    path = layout.autograded(student) / RESULT_FILE
    try:
        result = Result.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None  # never graded, or a record cut short by a kill: grade again
    for test in result.tests:
        if not test.notebook and len(layout.notebooks) == 1:
            test.notebook = layout.notebooks[0]  # a record from before tests named their notebook
    return result


# ---------------------------------------------------------------- running

def _local_results(spec, submissions, jobs, peaks, setups, key):
    """Yield (submission, result) from the pool of `jobs` warm worker processes kept in `setups` under `key` (the
    fingerprint, limits and confinement of `spec`, and `jobs`), started now if _ready did not start it;
    `submissions` (an iterable, read as it goes) are sent a few at a time so that a class's files are not all
    held at once. Fill `peaks` with the memory each process held (memory.peaks), read once every result
    is in. The pool is left in `setups` for the next call when it keeps workers, else ended."""
    workers = setups.pools.pop(key, None)
    if workers is not None and workers.pool._broken:  # a worker of the kept pool died
        interrupts.end_pool(workers.pool)
        workers = None
    waiting = iter(submissions)
    futures = {}
    finished = False

    def send(count):
        for submission in itertools.islice(waiting, count):
            with interrupts.held():  # a pool may start a worker as work is submitted
                futures[workers.pool.submit(_grade_installed, submission, workers.spec_file)] = submission

    try:
        if workers is None:
            workers = _start_workers(setups, spec, jobs)
        workers.hand_over(spec)
        send(IN_FLIGHT_PER_WORKER * jobs)
        while futures:
            finished_now, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in finished_now:
                submission = futures.pop(future)
                send(1)
                yield submission, _result_of(future, submission, spec)
        peaks.update(memory.peaks())
        finished = True
    finally:
        if workers is not None:
            if finished and setups.keep_workers:
                setups.pools[key] = workers
            else:
                interrupts.end_pool(workers.pool)


@dataclass
class Workers:
    """A pool of warm grading workers, and the file (in the grader's private scratch folder, which no sandbox
    sees) from which each reads the assignment it grades, the master's recorded answers included, at its first
    submission: the pool can start before the set-up that records them, and warm up meanwhile."""
    pool: ProcessPoolExecutor
    spec_file: str
    handed: bool = False

    def hand_over(self, spec: AssignmentSpec) -> None:
        """Write the assignment the workers grade, once, before the first submission is sent."""
        if not self.handed:
            write_atomically(Path(self.spec_file), pickle.dumps(spec))
            self.handed = True


def _start_workers(setups, spec, jobs):
    """A pool of `jobs` workers, forked from this process's fork server and started now (each warms up its own
    fork server from the notebooks of `spec` as handed out, which any spec of the assignment has)."""
    spec_file = os.path.join(setups.helpers, f"spec-{next(_numbers)}.pickle")
    with interrupts.held():
        pool = ProcessPoolExecutor(jobs, mp_context=warm.context(preload=_PRELOAD), initializer=_install,
                                   initargs=(spec,))
        for _ in range(jobs):  # a pool starts a worker at each submission while none is idle: all of them, now
            pool.submit(int)
    return Workers(pool, spec_file)


_numbers = itertools.count()


def _warm_fork_server(request, count):
    """This process's fork server, started if need be: the sandboxes of the recording, the canaries and a batch of
    one start from it. Pool workers are forked from it too, ready to grade; for a batch of one (_graded_here) it
    need not import the grading unit."""
    warm.context(preload=_PRELOAD if not _alone(request, count) else ())


def _alone(request, count):
    """True for a batch graded here, on this machine, one submission after another: one submission (an Autograde
    press, `grade --student`), or no more than one worker's share (a regrade of a few) unless more workers were
    asked for. One worker would grade them one after another too, after its start and its own fork server's."""
    if request.scheduler:
        return False
    return count == 1 or (count <= SUBMISSIONS_PER_WORKER and (request.jobs or 1) == 1)


def _graded_here(spec, submissions, peaks):
    """Yield (submission, result) graded in this process, as the canaries are: for a batch of a few submissions a
    pool worker costs more than the grading (its start, and its own fork server's, about a second of CPU). The
    sandbox is the same, started from this process's fork server; a failure of the grader's own code is that
    submission's error, as a worker's would be."""
    for submission in submissions:
        try:
            result = grade_submission(spec, submission)
        except Exception as error:  # noqa: BLE001 -- reported as the student's status; the batch goes on
            result = not_graded(spec, submission, f"the grader failed: {type(error).__name__}: {error}")
        peaks.update(memory.peaks())
        yield submission, result


_installed: tuple[str, AssignmentSpec] | None = None  # in a worker: (the file it was read from, the spec)


def _install(spec):
    # This worker's own fork server for the sandboxes, warming up while the set-up runs, with what the
    # notebooks as handed out import already imported (a warm-up only: nothing here may stop the worker).
    # Its children are sandboxes only: it does not import the grading unit (and nbgrader with it), which the
    # worker itself runs.
    try:
        cells = _released_code(spec)
        modules = warm.modules_imported(cells)
    except Exception:  # noqa: BLE001
        cells, modules = [], ()
    warm.context(quiet=True, modules=modules, cells=cells)
    memory.cap_this_process(memory.WORKER_MB)  # after: the fork server and the sandboxes have their own limits


def _released_code(spec):
    """The code cells of every notebook of the assignment as handed out (read when the assignment was loaded)."""
    return [cell.source for task in spec.notebooks if task.release
            for cell in nbformat.reads(task.release.decode("utf-8"), as_version=4).cells if cell.cell_type == "code"]


def _grade_installed(submission, spec_file):
    global _installed
    if _installed is None or _installed[0] != spec_file:
        with open(spec_file, "rb") as f:
            _installed = spec_file, pickle.load(f)  # the grader's own file (Workers.hand_over)
    return grade_submission(_installed[1], submission)


def _dask_results(spec, submissions, address):
    """Yield (submission, result) from the Dask cluster whose scheduler is at `address`."""
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise KitError("--scheduler grades on a Dask cluster, and Dask is not installed here: `pip install -e "
                       "'.[cluster]'` in this repository (and on every worker), or leave out --scheduler.") from None

    try:
        client = Client(address, timeout="10s")
    except OSError as error:
        raise KitError(f"cannot reach the Dask scheduler at {address} ({error}). Start one with "
                       "`dask scheduler` and `dask worker <address>`, or leave out --scheduler "
                       "to grade on this machine.") from None
    with client:
        shared = client.scatter(spec, broadcast=True)
        futures = {client.submit(grade_submission, shared, s, pure=False): s for s in submissions}
        for future in dask_completed(futures):
            yield futures[future], _result_of(future, futures[future], spec)


def _result_of(future, submission, spec):
    try:
        return future.result()
    except Exception as error:  # the worker itself died: report it, keep going
        return not_graded(spec, submission, f"the grading worker failed: {type(error).__name__}: {error}")


# ---------------------------------------------------------------- writing

def _write_outputs(layout, spec, submission, result):
    """autograded/<student>/<assignment>/, replaced whole; the result record is written last."""
    final = layout.autograded(submission.student)
    staging = final.parent / f".{layout.name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # As stock autograde: the submission's files, the master's files over them, the graded notebooks.
    files = submission_with_master_files(submission, spec.notebooks[0])
    for task in spec.notebooks:
        name = f"{task.notebook}.ipynb"
        if task.notebook in result.notebooks:
            files[name] = with_banner(result.notebooks[task.notebook], result).encode()
        else:
            # Nothing could be graded: the student's notebook is kept under a name no nbgrader command
            # opens, beside a placeholder that formgrader and generate_feedback can.
            if name in files:
                files[name + AS_SUBMITTED] = files.pop(name)
            files[name] = nbformat.writes(placeholder(task, result)).encode()
    write_files(staging, files)
    if submission.timestamp:
        (staging / "timestamp.txt").write_text(submission.timestamp)
    old = final.parent / f".{layout.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    write_atomically(final / RESULT_FILE, json.dumps(result.to_dict(), indent=1))


def with_banner(graded: str, result: Result) -> str:
    """The graded notebook `graded` (JSON text), headed by what needs the instructor's look when the status is not
    plain "graded": formgrader shows it above the student's cells. The reason can quote the student's text, so it
    goes in as an indented block, which Markdown shows verbatim whatever it holds."""
    if result.status == GRADED:
        return graded
    nb = nbformat.reads(graded, as_version=4)
    reason = "\n".join("    " + line for line in (result.reason or result.status).splitlines())
    banner = nbformat.v4.new_markdown_cell(f"**Autograder: {result.status}.** The grade stands as scored below; "
                                           f"this is what needs your look:\n\n{reason}")
    banner.metadata["autograder"] = {"banner": True}
    nb.cells.insert(0, banner)
    return nbformat.writes(nb)


AS_SUBMITTED = ".as-submitted"  # suffix of a notebook kept as the student sent it (see placeholder)


def placeholder(task: NotebookTask, result: Result) -> NotebookNode:
    """A notebook for manual grading in formgrader when the student's could not be graded: every cell
    the gradebook knows (tests as autograde leaves them, answers as released), after a note on what
    was wrong and where the student's file is."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    kept = f"{task.notebook}.ipynb{AS_SUBMITTED}"
    cells = [new_markdown_cell(
        # The reason quotes the file's parser, which can echo the student's text: escaped, never markup.
        f"**The autograder could not grade this submission: {result.status}.** {html.escape(result.reason)}.\n\n"
        f"What the student handed in is kept beside this notebook, in the course's autograded/ folder (`{kept}`, "
        "if there was a notebook). Read it, then give each test a score here (and a comment on the answer "
        "cells); formgrader's *Generate Feedback* (or the kit's `publish` command) then puts your grades on the "
        "student's feedback page.")]
    for cell in task.cells:
        source = cell.release_source if cell.solution and cell.release_source is not None else cell.source
        made = (new_code_cell if cell.cell_type == "code" else new_markdown_cell)(source=source)
        made.metadata["nbgrader"] = grading.master_metadata(cell)
        cells.append(made)
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def _keep_previous(previous, result, submission):
    """A regrade of the same files against the same tests that failed keeps the earlier good result."""
    return (previous is not None and result.status in FAILURES and previous.status not in FAILURES
            and previous.submission_fingerprint == submission.fingerprint
            and previous.assignment_fingerprint == result.assignment_fingerprint)


class Setups:
    """What one process keeps between the grade_batch calls that grade a class one student at a time (nbgrader's
    autograde through the kit: nbgrader_exporters.py), made again when the assignment, the limits or the
    confinement change: each assignment's set-up (the master's recorded answers and the canaries' verdict, made
    from the course's own files only, nothing a student sends), the memory plan, the gradebook's backup (once,
    before the first: the backups kept are not all of this run) and, with `keep_workers`, the grading workers
    (each sandbox is still a new process). `close` ends the workers and removes the rest."""

    def __init__(self, keep_workers: bool = False) -> None:
        self._helpers: str | None = None
        # (assignment fingerprint, limits, confine) -> (spec, notes)
        self.kept: dict[tuple[str, Limits, bool], tuple[AssignmentSpec, list[str]]] = {}
        self.plans: dict[tuple[int, Limits], memory.Plan] = {}  # (jobs, limits) -> memory.Plan
        self.backed_up: set[Path] = set()  # course folders
        self.keep_workers = keep_workers
        # (assignment fingerprint, limits, confine, jobs) -> Workers: started by _ready before the set-up, ended
        # after the batch unless kept
        self.pools: dict[tuple[str, Limits, bool, int], Workers] = {}

    def plan(self, jobs: int, limits: Limits) -> memory.Plan:
        if (jobs, limits) not in self.plans:
            self.plans[jobs, limits] = memory.plan(jobs, limits)
        return self.plans[jobs, limits]

    @property
    def helpers(self) -> str:
        """The scratch folder for the trusted copies of each assignment's helper files, made when first needed
        (inside grade_batch's clean-up: a Ctrl-C cannot fall between its making and the code that removes it)."""
        if self._helpers is None:
            self._helpers = tempfile.mkdtemp(prefix=scratch.prefix("helpers"))
        return self._helpers

    def close(self) -> None:
        try:
            for workers in self.pools.values():
                interrupts.end_pool(workers.pool)
            for plan in self.plans.values():
                memory.remove(plan.cgroup)
        finally:  # a worker or a cgroup that fails to end (or a second Ctrl-C) leaves no folder behind
            if self._helpers is not None:
                shutil.rmtree(self._helpers, ignore_errors=True)


@dataclass(frozen=True)
class BatchRequest:
    """What to grade and how: the assignment's files (an assignments.Layout), the students (None: everyone with a
    submission), and the run's settings."""
    layout: assignments.Layout
    students: tuple[str, ...] | None = None
    force: bool = False          # grade again even when unchanged
    jobs: int | None = None      # parallel workers (None: one per core and per 4 submissions, as memory allows)
    scheduler: str | None = None  # a Dask scheduler's address, instead of this machine's workers
    limits: Limits = Limits()
    progress: Progress | None = None  # terminal.Progress, or None for silence
    confine: bool = True


def grade_batch(layout: assignments.Layout, students: Sequence[str] | None = None, force: bool = False,
                jobs: int | None = None, scheduler: str | None = None, limits: Limits = Limits(),
                progress: Progress | None = None, confine: bool = True, setups: Setups | None = None) -> Batch:
    """Grade what needs grading; return a Batch (its `spec`: the AssignmentSpec graded). See the module
    docstring. `setups` (a Setups, which the caller closes): what it keeps is taken from it, and kept there;
    without one, everything is taken down at the end."""
    sweep_scratch()
    own = setups is None
    setups = setups or Setups()
    request = BatchRequest(layout, tuple(students) if students else None, force, jobs, scheduler, limits, progress,
                           confine)
    try:
        return _grade_batch(request, setups)
    finally:
        if own:  # whatever happens: the workers, the memory cgroup, the helper files
            setups.close()


def _set_up(layout, spec, helpers, cgroup, say):
    """(spec, notes): the assignment `spec` with the outside verdict recorded from the master and checked by the
    canaries, and what the instructor should know about it; kept from an earlier command when nothing it depends
    on has changed (setup_cache)."""
    delimiters = solutions.delimiters_of(coursedir.course_directory(layout.course_dir).config)
    kept_as = setup_cache.key_of(layout, spec, delimiters)
    kept = setup_cache.load(kept_as, helpers)
    if kept is not None:
        say(f"{layout.name}: set up as an earlier run did (the master's answers and the canary; nothing they "
            "depend on has changed)")
        if kept.confine:  # what the machine allows can change between commands (a container, a seccomp filter)
            graded = _canary_grade(kept.replace(memory_cgroup=cgroup), _release_canary(layout))
            _stop_unless_sound(layout, graded, "unchanged release")
        return kept, []
    say(f"{layout.name}: setting up (the master's answers to the tests, for the grader's own check)")
    spec, problems = with_verdict(layout, spec, helpers)
    notes = [f"{layout.name}: {line}; the tests that need it are judged inside the sandbox" for line in problems]
    say(f"{layout.name}: canary (the master's answers and the release, graded in the sandbox)")
    spec, canary_notes = run_canary(layout, spec.replace(memory_cgroup=cgroup))
    notes += canary_notes + ([inside_note(spec)] if inside_note(spec) else [])
    if not notes:  # only a clean set-up is kept (see setup_cache)
        setup_cache.save(kept_as, spec)
    return spec, notes


# The collecting process's own stages, beside the workers' (grading.STAGES, summed over the submissions).
BATCH_STAGES = ("setup (the master's answers, the canary)", "reading files", "gradebook write",
                "autograded folder")


def _grade_batch(request, setups):
    started = time.monotonic()
    layout, progress = request.layout, request.progress
    say = progress.phase if progress else (lambda text: None)  # each step before the grading itself
    batch = Batch()
    students = _chosen_students(request, batch)
    if request.force or not all((layout.autograded(s) / RESULT_FILE).is_file() for s in students):
        # Something will surely be graded: the fork server warms up (a second of imports) while the assignment is
        # read, instead of after. When every student was graded before, nothing may change: it waits until then.
        _warm_fork_server(request, len(students))
    # The outside verdict is recorded only once there is something to grade: the plan needs only the fingerprint.
    batch.spec = load_assignment(layout, request.limits, request.confine)
    course = coursedir.course_directory(layout.course_dir)
    say(f"{layout.name}: reading {counted(len(students), 'submission')} and checking which changed")
    previous_of = _to_grade(request, students, gradebook.graded_students(course, layout.name), batch)
    submissions = list(previous_of)  # the students to grade, in order
    if not submissions:
        batch.seconds = time.monotonic() - started
        return batch
    jobs, key = _ready(request, setups, len(submissions), batch, say)
    say(f"{layout.name}: grading {counted(len(submissions), 'submission')} with {counted(jobs, 'worker')}")
    if request.scheduler:
        results = _dask_results(batch.spec, list(_read_each(layout, submissions, batch.stages)),
                                request.scheduler)
    elif _alone(request, len(submissions)):
        results = _graded_here(batch.spec, _read_each(layout, submissions, batch.stages), batch.peaks)
    else:
        results = _local_results(batch.spec, _read_each(layout, submissions, batch.stages), jobs, batch.peaks,
                                 setups, key + (jobs,))
    _record_all(layout, course, results, previous_of, progress, batch)
    batch.seconds = time.monotonic() - started
    return batch


def _chosen_students(request, batch):
    """The students to look at, as asked (everyone with a submission when none were named); the folders and
    files that are not submissions go to `batch.misplaced`. KitError when there is no one to grade."""
    layout = request.layout
    refused_folders = []
    everyone = submitted_students(layout, refused_folders)
    unknown = [s for s in request.students or () if s not in everyone]
    if unknown:
        raise KitError(f"no submission of {layout.name} for {', '.join(unknown)}: expected "
                       f"submitted/<student>/{layout.name}/ folders under {layout.course_dir}.")
    students = list(request.students or everyone)
    misplaced = misplaced_files(layout)
    if not students:
        raise KitError(f"nothing to grade: {layout.course_dir / 'submitted'} holds no <student>/{layout.name}/ "
                       f"folders. Put each submission at submitted/<student>/{layout.name}/"
                       f"{_notebook_for(layout, '<notebook>')}, or collect them with "
                       f"`{coursedir.hint('collect <folder or zip> --assignment ' + layout.name)}`."
                       + "".join(f"\n  {path}: {fix}" for path, fix in misplaced))
    batch.misplaced = misplaced + refused_folders
    return students


def _to_grade(request, students, in_gradebook, batch):
    """{student: their previous result or None}, in order, for the students whose submission must be graded: new,
    changed, graded against another version of the assignment, or all with `force`. The others keep their stored
    result (batch.unchanged)."""
    layout, fingerprint = request.layout, batch.spec.fingerprint
    todo = {}
    clock = time.perf_counter()
    for student in students:
        submission = _read_or_refuse(layout, student)
        previous = stored_result(layout, student)
        current = (previous is not None and student in in_gradebook
                   and previous.submission_fingerprint == submission.fingerprint
                   and previous.assignment_fingerprint == fingerprint)
        if current and not request.force:
            batch.results[student] = previous
            batch.unchanged.append(student)
        else:
            todo[student] = previous
        del submission  # read again when it is sent to a worker: a class's files are not all held at once
    lap(batch.stages, "reading files", clock)
    return todo


def _ready(request, setups, count, batch, say):
    """(jobs, key): everything set up before the first submission is graded, kept in `setups` — the memory plan
    (how many sandboxes at once), the grading workers (started first, to warm up during the rest), the master's
    recorded answers and the canaries (batch.spec gets them), the gradebook's backup."""
    layout, limits = request.layout, request.limits
    clock = time.perf_counter()
    default = min(os.cpu_count() or 1, -(-count // SUBMISSIONS_PER_WORKER))  # one per core, each given a few
    jobs = max(1, min(request.jobs or default, count))
    _warm_fork_server(request, count)  # here, unless _grade_batch started it already
    try:
        held = setups.plan(jobs, limits)
    except MemoryError as error:
        raise KitError(f"no submission was graded: {error}") from None
    batch.notes += [held.note] if held.note else []
    batch.workers = held.how
    key = (batch.spec.fingerprint, limits, request.confine)
    if not request.scheduler and not _alone(request, count) and key + (held.jobs,) not in setups.pools:
        # The workers start now: their imports and their fork servers' run on the other cores while this one
        # records the master's answers and grades the canaries.
        setups.pools[key + (held.jobs,)] = _start_workers(setups, batch.spec, held.jobs)
    if key not in setups.kept:
        helpers = os.path.join(setups.helpers, str(len(setups.kept)))  # each its own: helper modules differ
        os.mkdir(helpers)
        setups.kept[key] = _set_up(layout, batch.spec, helpers, held.cgroup, say)
    spec, notes = setups.kept[key]
    batch.spec = spec.replace(memory_cgroup=held.cgroup)
    batch.notes += notes
    if layout.course_dir not in setups.backed_up:
        say(f"{layout.name}: backing up the gradebook")
        gradebook.backup(layout.course_dir)
        setups.backed_up.add(layout.course_dir)
    lap(batch.stages, BATCH_STAGES[0], clock)
    return held.jobs, key


def _record_all(layout, course, results, previous_of, progress, batch):
    """Record each result as it comes (the gradebook, autograded/), or keep the previous one where a failed
    regrade must not replace it; on Ctrl-C, what was not graded is listed in batch.pending."""
    submissions = list(previous_of)
    bar = progress(len(submissions)) if progress else None
    writer = gradebook.Writer(course, layout.name, [task.notebook for task in batch.spec.notebooks])
    done = set()
    try:
        for submission, result in results:
            previous = previous_of[submission.student]
            if _keep_previous(previous, result, submission):
                batch.kept[submission.student] = f"regrade {result.status} ({result.reason}); kept the result " \
                                                 f"of {previous.graded_at}"
                batch.results[submission.student] = previous
            else:
                batch.results[submission.student] = _record(layout, batch.spec, writer, submission, result,
                                                            batch.stages)
            for stage, seconds in result.stages.items():
                batch.stages[stage] = batch.stages.get(stage, 0.0) + seconds
            batch.graded.append(submission.student)
            done.add(submission.student)
            if bar:
                bar.update(submission.student, result.status)
            interrupts.check()
    except KeyboardInterrupt:
        batch.pending = [s for s in submissions if s not in done]
        for student in batch.pending:
            if previous_of[student] is not None:
                batch.results[student] = previous_of[student]
    finally:
        if bar:
            bar.close()
        writer.close()


def _read_each(layout, students, stages):
    """Each student's submission, read when it is asked for."""
    for student in students:
        clock = time.perf_counter()
        submission = _read_or_refuse(layout, student)
        lap(stages, "reading files", clock)
        yield submission


def _read_or_refuse(layout, student):
    """read_submission, or, should reading fail in a way no rule foresaw, a submission with nothing readable
    that says why: the student then gets a status with the reason, and the batch goes on."""
    try:
        return read_submission(layout, student)
    except Exception as error:
        return Submission(student, (), refused=((".", f"the folder cannot be read ({type(error).__name__}: "
                                                      f"{shown(str(error)[:200])})"),))


def _record(layout, spec, writer, submission, result, stages):
    """Write one result to the gradebook and autograded/; returns the result that stands.

    If writing fails, the student gets a grader error with the reason (written the same way, which asks
    for a manual grade in the gradebook); if even that fails, the failure is the result, unwritten.
    Either way the batch goes on with the next student.
    """
    try:
        clock = time.perf_counter()
        writer.write(result)
        clock = lap(stages, "gradebook write", clock)
        _write_outputs(layout, spec, submission, result)
        lap(stages, "autograded folder", clock)
        result.notebooks = {}  # on disk now: a class of 1,000 need not hold every graded notebook in memory
        return result
    except Exception as error:
        writer.rollback()
        failed = not_graded(spec, submission, f"the grader could not record this result "
                                              f"({type(error).__name__}: {shown(str(error)[:200])})")
    try:
        writer.write(failed)
        _write_outputs(layout, spec, submission, failed)
    except Exception as error:
        writer.rollback()
        failed.reason += f"; nor the grader error itself ({type(error).__name__})"
    return failed


def all_results(layout: assignments.Layout) -> dict[str, Result | None]:
    """student -> stored Result for every submission of the assignment in submitted/ (None: not graded yet)."""
    return {s: stored_result(layout, s) for s in submitted_students(layout)}

