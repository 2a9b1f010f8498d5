"""The grading unit: a pure function of (spec, submission) -> result, `spec` the assignment as workers grade it
(an AssignmentSpec).

`grade_submission` reads nothing but its arguments and writes nothing but the trusted copies of the helper
files (in `spec`'s scratch folder, verdict.trusted_files): the
student's code runs in a sandbox that holds its working copy (execute.py,
sandbox.py), so it runs the same in a local process pool or on a Dask worker. The
gradebook, the files in autograded/ and the reports are written by one writer,
from the results.

What it does mirrors stock `nbgrader autograde` step by step (ClearOutput,
DeduplicateIds, OverwriteCells, Execute, SaveAutoGrades' scoring through
nbgrader's own `determine_grade`), with these deliberate differences, all listed
in the README:
- hidden tests never enter the student's process: each test cell is judged again
  here on the student's outputs (verdict.py), and scores only if both runs pass;
- test cells that were deleted are put back from the master, and flagged;
- text on stderr costs no points (an error still does);
- limits: per-cell timeout, per-notebook budget, memory, processes, disk, output;
- cells run in a sandboxed IPython shell instead of a Jupyter kernel.
"""
from __future__ import annotations

import builtins
import copy
import dataclasses
import functools
import hashlib
import importlib.util
import marshal
import math
import os
import re
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbformat.v4.nbbase import random_cell_id
from nbgrader import utils as nbutils

from grader.core import hidden
from grader.core.errors import SandboxFailure
from grader.core.model import (AssignmentSpec, CRASHED, ERROR, GRADED, INVALID, MISSING, NotebookTask, RESTORED,
                               RESTORED_NOTE, Result, STATUSES, Submission, TAMPERING, TestResult, TIMED_OUT)
from grader.core.notebook import cell_grade_id, is_graded_cell, is_locked_cell, nbgrader_meta
from grader.core.plain_text import for_markdown, for_terminal
from grader.judge import review, verdict
from grader.run import calls

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from grader.core.model import MasterCell


# ---------------------------------------------------------------- the pure function

def grade_submission(spec: AssignmentSpec, submission: Submission) -> Result:
    """Grade one submission of `spec`, the assignment, every notebook of it; never raises for anything the student did.

    A notebook missing beside others that were handed in is graded as released, as stock autograde does
    (its tests fail, its answers are unanswered), and flagged; with none handed in, the submission is missing.
    """
    handed_in = {path for path, _ in submission.files} | {path for path, _ in submission.refused}
    some = any(f"{task.notebook}.ipynb" in handed_in for task in spec.notebooks)
    results = []
    for task in spec.notebooks:
        name = f"{task.notebook}.ipynb"
        if name in handed_in or not some or not task.release:
            results.append(_grade_notebook(task, submission))
            continue
        as_released = dataclasses.replace(submission, files=submission.files + ((name, task.release),))
        result = _grade_notebook(task, as_released)
        _tell(result, f"{name} was not handed in: graded as released, as stock nbgrader does",
              f"Your submission had no {name}: it was graded as it was handed out to you.")
        result.reason = "; ".join(["not handed in, graded as released"] + ([result.reason] if result.reason else []))
        results.append(result)
    return _merged(spec, submission, results)


def _grade_notebook(task, submission):
    result = Result(submission.student, GRADED, submission_fingerprint=submission.fingerprint,
                    assignment_fingerprint=task.fingerprint, timestamp=submission.timestamp,
                    graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    confined=task.confine, late=submission.late,
                    refused=[path for path, _ in submission.refused])
    result.inside = [f"{task.notebook}/{grade_id}" for grade_id in sorted(task.inside)]
    try:
        _grade(task, submission, result)
    except SandboxFailure:
        raise
    except Exception as error:  # a bug in the kit must not cost the batch, nor pass silently
        return _not_graded(task, submission, f"{type(error).__name__}: {error}")
    return result


def _merged(spec, submission, results):
    """One result for the submission from its notebooks' results: the worst status, every test."""
    if len(results) == 1:
        merged = results[0]
    else:
        merged = dataclasses.replace(results[0], tests=[], flags=[], notes=[], review=[], comments={}, answers={},
                                     notebooks={}, inside=[], forgeable=[], seconds=0.0, peak_mb=0.0,
                                     behaviour={}, stages={})
        merged.status = min((r.status for r in results), key=STATUSES.index)
        merged.reason = "; ".join(f"{task.notebook}: {r.reason}" for task, r in zip(spec.notebooks, results)
                                  if r.reason)
        for r in results:
            merged.tests += r.tests
            merged.flags += [f for f in r.flags if f not in merged.flags]
            merged.notes += [n for n in r.notes if n not in merged.notes]
            merged.review += [f for f in r.review if f not in merged.review]
            merged.comments.update(r.comments)
            merged.answers.update(r.answers)
            merged.notebooks.update(r.notebooks)
            merged.inside += r.inside
            merged.forgeable += r.forgeable
            merged.behaviour.update(r.behaviour)
            merged.replay_failed.update(r.replay_failed)
            merged.seconds += r.seconds
            for stage, seconds in r.stages.items():
                merged.stages[stage] = merged.stages.get(stage, 0.0) + seconds
            merged.peak_mb = max(merged.peak_mb, r.peak_mb)
    merged.assignment_fingerprint = spec.fingerprint
    return merged


def not_graded(spec: AssignmentSpec, submission: Submission, reason: str) -> Result:
    """The result of a submission the grader itself failed on: status ERROR, nothing scored."""
    return _merged(spec, submission, [_not_graded(task, submission, reason) for task in spec.notebooks])


def _not_graded(task, submission, reason):
    return Result(submission.student, ERROR, reason, confined=task.confine,
                  refused=[path for path, _ in submission.refused],
                  tests=_unscored_tests(task, "not graded automatically: your instructor will grade it"),
                  submission_fingerprint=submission.fingerprint,
                  assignment_fingerprint=task.fingerprint, timestamp=submission.timestamp,
                  late=submission.late, graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))


# Where a grading's time goes, in order, as the benchmark reports it: measured by the grader, outside the
# student's process. The sandbox's stages are the notebook's run as seen from here.
STAGES = ("reading and sanitising", "sandbox start", "cells run", "the wire", "outside replay",
          "scoring and the graded notebook")


def lap(stages: dict[str, float], stage: str, since: float) -> float:
    """Add the time since `since` (time.perf_counter()) to `stages[stage]`; returns now, the start of the next
    stage. A grading's stages are STAGES; a batch adds its own (batch.BATCH_STAGES) and the command its pages
    and copy report."""
    now = time.perf_counter()
    stages[stage] = stages.get(stage, 0.0) + now - since
    return now


def _tell(result, instructor, student=None):
    """One finding: a line for the instructor (the flags, and the reason), and its words for the student."""
    result.flags.append(instructor)
    if student:
        result.notes.append(student)


def _grade(task, submission, result):
    """Grade one notebook (`task`, a NotebookTask) of `submission` into `result`: read and sanitise it, run it
    in the sandbox, judge it outside, score it, and say what happened."""
    clock = time.perf_counter()
    read = _readable_notebook(task, submission, result)
    if read is None:
        return
    nb, restored = read
    working_copy = _working_copy(nb, task, submission, result)
    cells, probes = _cells_to_run(nb, task)
    from grader.run import execute  # here: it loads IPython and pyplot, which a run with nothing to grade never needs
    clock = lap(result.stages, "reading and sanitising", clock)
    run = execute.run_cells(cells, working_copy, task.limits, probes, confine=task.confine,
                            cgroup=task.memory_cgroup)
    if run.sandbox_error:
        raise SandboxFailure(*run.sandbox_error)
    result.stages["sandbox start"] = run.started_seconds
    result.stages["the wire"] = run.wire_seconds
    clock = lap(result.stages, "cells run", clock + run.started_seconds + run.wire_seconds)
    result.seconds = round(run.seconds, 3)
    result.peak_mb = run.peak_mb
    _fill_outputs(nb, run)
    exposed_at = _first_hidden_inside(cells, task.hidden_markers)
    broken = _explain_broken_cells(nb, result, exposed_at)
    clock = lap(result.stages, "scoring and the graded notebook", clock)
    tampered, probe_timeouts, credit, told = _judge_outside(nb, task, run, result, exposed_at)
    clock = lap(result.stages, "outside replay", clock)
    result.behaviour = _behaviour(nb, task, run)
    run.timed_out = sorted(set(run.timed_out) | set(probe_timeouts))
    _score(nb, task, result, credit, told, exposed_at, broken)
    _mark_forgeable(task, result)
    _limit_output(nb)
    result.notebooks[task.notebook] = nbformat.writes(nb)
    _tell_how_it_ran(nb, task, run, result)
    result.status = _status(run, tampered, restored) or result.status
    result.reason = "; ".join(result.flags)
    lap(result.stages, "scoring and the graded notebook", clock)


def _readable_notebook(task, submission, result):
    """(notebook, restored): the student's notebook read and sanitised as nbgrader's autograde does, `restored`
    true when a test cell was put back from the master; None when there is none to grade (`result` says why)."""
    name = task.notebook + ".ipynb"
    files, refused = dict(submission.files), dict(submission.refused)
    if refused:
        listed = "; ".join(f"{path}: {why}" for path, why in list(refused.items())[:5])
        more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        _tell(result, f"files refused: {listed}{more}",
              f"Some of what you handed in could not be used and was left out: {listed}{more}. "
              "Hand in plain files only (no links, no special files).")
    if name in refused:
        result.status, result.reason = INVALID, f"{name} was refused: {refused[name]}"
        result.tests = _unscored_tests(task, f"{name} could not be read")
        return None
    if name not in files:
        others = sorted(p for p in files if p.endswith(".ipynb"))
        result.status = MISSING
        result.reason = "; ".join([f"no {name} in the submission" + (f" (found {', '.join(others)})" if others
                                                                      else "")] + result.flags)
        result.tests = _unscored_tests(task, f"no {name} was found in the submission")
        return None
    nb, problem = _read_notebook(files[name], name)
    if nb is None:
        result.status, result.reason = INVALID, problem
        result.tests = _unscored_tests(task, "the notebook could not be opened")
        return None
    if problem:  # the validator's own words go into the graded notebook, for whoever wants them
        _tell(result, "the notebook's format was repaired", "Your notebook file had a small format problem; the "
              "grader repaired it and graded the repaired copy.")
    restored = _sanitize(nb, task, result.flags, result.notes)
    if problem:
        nb.metadata["autograder"] = {"format_repaired": problem}
    return nb, restored


def _working_copy(nb, task, submission, result):
    """{path: bytes}: the files the notebook runs beside (the assignment's own and the student's others), with
    the student's code reviewed on the way."""
    helpers = [Path(path).stem for path, _ in task.files if path.endswith(".py") and "/" not in path]
    result.review = review.scan(_student_code(nb), helpers)
    working_copy = submission_with_master_files(submission, task)
    dropped = sorted(p for p, _ in submission.files if p not in working_copy)  # the master's own are there
    if dropped:
        _tell(result, f"files left out of the working copy (they clash with the assignment's own files, or go "
                      f"beyond {MAX_EXTRA_FILES_MB} MB): {', '.join(dropped[:5])}"
                      + (f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""),
              "Some files you handed in beside the notebook were not used (they have the name of a file the "
              "assignment provides, or are too large): " + ", ".join(dropped[:5]))
    working_copy.pop(task.notebook + ".ipynb", None)  # the cells are sent to the process, not read from disk
    for path, data in task.files:
        bytecode = _bytecode(path, data) if path.endswith(".py") else None
        if bytecode and os.path.dirname(bytecode[0]) not in working_copy:  # (a student's file where it goes)
            working_copy[bytecode[0]] = bytecode[1]
    return working_copy


@functools.lru_cache(maxsize=64)
def _bytecode(path: str, source: bytes) -> tuple[str, bytes] | None:
    """(where, bytes) of the compiled form of one of the assignment's Python files, as Python would cache it
    beside the file (PEP 552, checked against the source's hash), or None if it does not compile. Each sandbox
    would otherwise compile the assignment's modules again on import (about 12 ms a student for a 40 KB module); the
    sandbox checks the hash, so a student's process that changes the file gets the file's new code, as without."""
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    folder, name = os.path.split(path)
    where = os.path.join(folder, "__pycache__", f"{name[:-3]}.{sys.implementation.cache_tag}.pyc")
    checked_hash = (0b11).to_bytes(4, "little")
    return where, importlib.util.MAGIC_NUMBER + checked_hash + importlib.util.source_hash(source) + marshal.dumps(code)


def _cells_to_run(nb, task):
    """(cells, probes): the code cells the sandbox runs, as (index, source), and after which of them it calls
    the student's functions on the recorded inputs (index -> calls, without the master's outputs).

    The sandbox gets the notebook as students see it: hidden tests never enter it, except in the test cells the
    grader cannot replay (task.inside), which run whole, as in stock."""
    cells = [(i, c.source if cell_grade_id(c) in task.inside else hidden.strip(c.source, task.hidden_markers))
             for i, c in enumerate(nb.cells) if c.cell_type == "code" and (runs_code(c.source) or is_graded_cell(c))]
    probes = {}
    for i, cell in enumerate(nb.cells):
        plan = task.plans.get(cell_grade_id(cell))
        if plan is not None and cell.cell_type == "code":
            probes[i] = [calls.Call(c.function, c.inputs, None, c.absent) for c in plan.calls]
    return cells, probes


def _tell_how_it_ran(nb, task, run, result):
    """The findings of the run itself: output cut, cells stopped at their timeout, the notebook stopped early,
    a report the grader did not ask for."""
    code_names = {i: _cell_name(c, i) for i, c in enumerate(nb.cells)}
    seen_as = {i: student_cell_name(c) for i, c in enumerate(nb.cells)}  # as the student sees their cells
    limits = task.limits
    if run.truncated:
        _tell(result, f"output cut at {limits.output_chars} characters",
              f"Your notebook printed more than {limits.output_chars} characters; the rest of its output was cut.")
    if run.timed_out:
        _tell(result, "cell timeout ({:g} s) in {}".format(limits.cell_timeout,
                                                           ", ".join(code_names[i] for i in run.timed_out)),
              "These cells ran longer than the {:g} s each cell may take and were stopped: {} (an endless "
              "loop?).".format(limits.cell_timeout, "; ".join(seen_as[i] for i in run.timed_out)))
    if run.stopped:
        _tell(result, f"{run.stopped}; cells from {code_names.get(run.stopped_at, 'the end')} on did not run",
              f"Your notebook stopped early ({run.stopped}); the cells from {seen_as.get(run.stopped_at, 'the end')} "
              "on did not run, so their tests score nothing.")
    if run.protocol_error:
        # Honest code never writes to the grader's channel: only a forged report can break its format.
        _tell(result, "tampering suspected: the notebook's process wrote to the grader's channel what the grader "
                      "did not ask for")


def _status(run, tampered, restored):
    """The status the run gives the notebook, worst first; None when it leaves it graded."""
    if tampered or run.protocol_error:
        return TAMPERING
    if run.stopped and "budget" in run.stopped:
        return TIMED_OUT
    if run.stopped:
        return CRASHED
    if run.timed_out:
        return TIMED_OUT
    if restored:
        return RESTORED
    return None


def _student_code(nb):
    """Source of the code cells the student could edit (not the locked ones the grader restored)."""
    return [c.source for c in nb.cells if c.cell_type == "code"
            and not is_locked_cell(c)]


def _first_hidden_inside(cells, markers):
    """The index of the first cell that runs hidden test code in the student's process (a test judged inside,
    run whole, as stock runs it), or None. From that cell on, the student's code can read hidden code and
    carry it in anything it makes (an error message, a value sent back, a displayed score): text that comes
    from the student's process after it is not shown to the student (see `withheld`)."""
    return next((index for index, source in cells if hidden.has_hidden(source, markers)), None)


def _exposed(index, exposed_at):
    return exposed_at is not None and index >= exposed_at


# Exception names a student's process may report that are shown as they are: Python's own (anything else is
# a name the student's code chose, which could spell anything).
_PLAIN_NAMES = {name for name in dir(builtins) if isinstance(getattr(builtins, name), type)
                and issubclass(getattr(builtins, name), BaseException)}


def plain_name(ename: str) -> str:
    return ename if ename in _PLAIN_NAMES else "an error"


WITHHELD = ("it failed; its message is not shown: your notebook ran a test with hidden checks before this point, "
            "and what your notebook reports after that stays with your instructor (run the cell in Jupyter to see "
            "the message)")


def withheld(ename: str) -> str:
    """A student's message when the text of the failure cannot be trusted to be free of hidden tests: the same
    words whatever failed (even the kind of error would carry a few bits of what the student's code read)."""
    if ename in ("CellTimeout", "TimedOutBefore"):
        return "the test ran out of time (an endless loop?)"
    return WITHHELD


def untravelled(kind: str) -> str:
    """A student's message when their function returned what cannot be checked outside their notebook."""
    shown = kind if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ ]{0,60}", kind) else "value of its own kind"
    return (f"your function returned a {shown}, which the grader cannot check outside your notebook; return "
            "numbers, strings, lists, tuples, dicts, sets or numpy arrays")


HIDDEN_ADVICE = ("The visible checks passed, a hidden one did not: try your function on other inputs than the "
                 "visible tests use (edge cases, other sizes and values), and check what it gives against what you "
                 "work out by hand.")


def hidden_failure(judged: verdict.Verdict, plan: verdict.TestPlan, exposed: bool = False) -> str:
    """The student's message when a hidden check failed in the grader's own run: that it did, on which kind of
    input if the master's hidden block says so (hidden.HINT), and what to try. Nothing of its message (nor,
    after hidden code ran in the student's process, the kind of error their function raised)."""
    hints = "; ".join(plan.hidden.hints)
    on = f" ({hints})" if hints else ""
    if judged.kind == "raised":
        kind = "an error" if exposed else plain_name(judged.ename)
        return f"your function raised {kind} when a hidden check called it{on}. {HIDDEN_ADVICE}"
    if judged.kind in ("mismatch", "protocol"):
        return f"a hidden check could not use what your function returned{on}"
    return f"a hidden check failed{on}. {HIDDEN_ADVICE}"


def _judge_outside(nb, task, run, result, exposed_at=None):
    """Replay each test cell here on the student's outputs; a failure becomes the cell's last error.

    Returns (tampered, timed out, credit, told): tampered is True when a test passed in the student's process
    but its visible checks failed here on the same outputs, before any hidden code ran (something in that
    process changed what the test saw); timed out lists the test cells whose functions ran out of time when
    the grader's calls were answered; credit maps a partial-credit cell's index to (its value as computed here
    or None, why it is not a score); told maps a cell's index to the student's message about its failure
    (the cell's error output keeps the whole of it, for the instructor).
    """
    tampered, timed_out, credit, told = False, [], {}, {}
    for index, cell in enumerate(nb.cells):
        grade_id = cell_grade_id(cell)
        plan = task.plans.get(grade_id)
        if plan is None or cell.cell_type != "code" or index not in run.outputs:
            continue
        passed_inside = not any(o.output_type == "error" for o in cell.outputs)
        if not passed_inside:
            continue  # it scores nothing already; the outside verdict cannot add points
        # The grader's own replay on size-capped outputs takes well under a second; its limit is not the
        # student's cell timeout, which can be set far lower than that.
        judged = verdict.replay(plan, run.calls.get(index), task.files, task.helpers,
                                max(task.limits.cell_timeout, verdict.REPLAY_SECONDS))
        if judged.passed:
            if plan.partial_credit:
                credit[index] = (judged.value, judged.value_problem)
            continue
        if judged.kind == "missing" or judged.ename in ("CellTimeout", "TimedOutBefore"):
            timed_out.append(index)  # the student's function ran out of time on the grader's calls
        evalue = strip_hidden_lines(judged.evalue, task)
        cell.outputs.append(nbformat.v4.new_output("error", ename=judged.ename, evalue=judged.evalue,
                                                   traceback=[f"{judged.ename}: {judged.evalue}"]))
        exposed = _exposed(index, exposed_at)
        if judged.untravelled and not exposed:
            told[index] = untravelled(judged.untravelled)
        elif not judged.message_may_show:
            told[index] = hidden_failure(judged, plan, exposed)
        elif exposed:
            told[index] = withheld(judged.ename)
        result.replay_failed[f"{task.notebook}/{grade_id}"] = f"{judged.ename}: {evalue[:200]}"
        if judged.contradicts_the_notebook:
            tampered = True
            result.flags.append(f"tampering suspected in {grade_id}: the test passed in the student's process, "
                                f"but the grader's own run of its checks on the same outputs failed "
                                f"({judged.ename}: {evalue[:200]})")
    return tampered, timed_out, credit, told


def _mark_forgeable(task, result):
    """A test judged inside the student's process can be forged there (see the README). When one passed and the
    code scan found what forging uses (an object that redefines comparison, an IPython hook, frame access,
    patching), the submission is marked for the instructor: its status stays, its score too (no evidence)."""
    signs = [finding for finding in result.review if finding.startswith(review.FORGING)]
    passed = [t.grade_id for t in result.tests if t.grade_id in task.inside and t.passed]
    if signs and passed:
        result.forgeable = [f"{task.notebook}/{grade_id}" for grade_id in passed]
        result.flags.append(f"check by hand: {', '.join(passed)} passed judged inside the student's process, and "
                            f"the code has what forging uses ({'; '.join(signs)}): read those cells, and set a "
                            "forged test to 0 in formgrader")


def _behaviour(nb, task, run):
    """What the student's functions returned on each recorded call, as digests for the copy report: data the
    grader already holds, outside the student's process. Never a reason to fail a grading."""
    from grader.core.digest import output_digest
    digests = {}
    for index, cell in enumerate(nb.cells):
        grade_id = cell_grade_id(cell)
        plan = task.plans.get(grade_id)
        outputs = run.calls.get(index)
        if plan is None or outputs is None or len(outputs) != len(plan.calls):
            continue
        for k, (call, node) in enumerate(zip(plan.calls, outputs)):
            if call.reads:
                continue
            try:
                digest = _master_digest(call) if node == call.master_output else output_digest(node, call.inputs)
            except Exception:  # noqa: BLE001 -- the evidence is optional; the grade is not
                continue
            if digest is not None:
                digests[f"{task.notebook}/{grade_id}:{k}"] = digest
    return digests


# id(call) -> (call, the digest of its master output): the call is kept, so the id stays its
_master_digests: dict[int, tuple[calls.Call, Any]] = {}


def _master_digest(call):
    """output_digest of what the master returned on `call`, computed once per process: most students return
    exactly that, and decoding it again for each would cost more than the rest of their grading here."""
    from grader.core.digest import output_digest
    kept = _master_digests.get(id(call))
    if kept is None or kept[0] is not call:
        kept = _master_digests[id(call)] = (call, output_digest(call.master_output, call.inputs))
    return kept[1]


def strip_hidden_lines(text: str, task: NotebookTask) -> str:
    hidden = task.hidden_lines()
    return "\n".join(line for line in text.splitlines() if not any(h in line for h in hidden))


def _unscored_tests(task, message):
    """Every test of the notebook without a score: the gradebook leaves them for a manual grade."""
    return [TestResult(c.grade_id, task.part_of(c.grade_id), 0.0, float(c.points), message, scored=False,
                       notebook=task.notebook) for c in task.tests()]


MAX_CELLS = 2000  # cells that run code: far more than any assignment (see `runs_code`)
MAX_ALL_CELLS = 100_000  # every cell is read and checked here, even one with nothing to run


def runs_code(source: str) -> bool:
    """False for a code cell that runs nothing: blank, comments, `pass`. Such cells are not sent to the sandbox
    and not counted against MAX_CELLS (an honest notebook may hold thousands of them)."""
    lines = [line.strip() for line in source.splitlines()]
    return any(line and not line.startswith("#") and line not in ("pass", "pass;") for line in lines)


def _read_notebook(data, name):
    """(notebook, note) or (None, why it cannot be graded)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"{name} is not UTF-8 text (is it really a notebook?)"
    try:
        with warnings.catch_warnings(record=True) as caught:  # e.g. duplicate cell ids, repaired
            warnings.simplefilter("always")
            nb = nbformat.reads(text, as_version=4)
    except nbformat.reader.NotJSONError:
        return None, f"{name} is not valid JSON (cut short, or edited outside Jupyter)"
    except Exception as error:  # nbformat raises several unrelated types for unreadable files
        return None, f"{name} cannot be read as a notebook ({type(error).__name__}: {str(error)[:120]})"
    if not isinstance(nb.get("cells"), list):
        return None, f"{name} has no list of cells"
    if len(nb.cells) > MAX_ALL_CELLS:
        return None, f"{name} has {len(nb.cells)} cells, over the {MAX_ALL_CELLS} the grader reads"
    running = sum(1 for c in nb.cells if isinstance(c, dict) and c.get("cell_type") == "code" and runs_code(
        c.get("source") if isinstance(c.get("source"), str) else "".join(c.get("source") or "")))
    if running > MAX_CELLS:
        return None, f"{name} has {running} cells with code to run, over the {MAX_CELLS} the grader runs"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(nb)
    except nbformat.ValidationError as error:
        return nb, for_terminal(error.message[:300])
    if caught:
        return nb, for_terminal(str(caught[0].message)[:300])
    return nb, ""


def _clean_cell(cell):
    """A fresh, schema-valid copy of `cell` with its source and nbgrader metadata only."""
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else str(source)
    kind = cell.get("cell_type")
    kind = kind if kind in ("code", "markdown") else "raw"
    cell_id = cell.get("id") if isinstance(cell.get("id"), str) else None
    clean = nbformat.from_dict({"id": cell_id or random_cell_id(), "cell_type": kind, "source": source,
                                "metadata": {}})  # not validated cell by cell: writes() validates it all
    if kind == "code":
        clean.outputs, clean.execution_count = [], None
    meta = cell.get("metadata", {})
    if isinstance(meta, dict) and isinstance(meta.get("nbgrader"), dict):
        clean.metadata["nbgrader"] = copy.deepcopy(meta["nbgrader"])
    return clean


def text_digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def _clean_metadata(metadata):
    """The notebook's kernel and language, as plain strings; nothing else of the student's metadata is kept."""
    clean = {}
    for key in ("kernelspec", "language_info"):
        value = metadata.get(key) if isinstance(metadata, dict) else None
        if isinstance(value, dict):
            clean[key] = {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str) and len(v) < 200}
    clean.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    clean["kernelspec"].setdefault("name", "python3")
    clean["kernelspec"].setdefault("display_name", "Python 3")
    return nbformat.from_dict(clean)


def _sanitize(nb, task, flags, notes):
    """Clear outputs, drop duplicate ids, overwrite cells from the master, restore missing tests.

    Returns True when a test cell was restored (deleted, edited or changed type).
    """
    master = {c.grade_id: c for c in task.cells}
    cells = [_clean_cell(c) for c in nb.cells if isinstance(c, dict)]
    for cell in cells:  # formgrader shows them to the instructor: the student's text never as live HTML
        if cell.cell_type != "code" and text_digest(cell.source) not in task.released_text:
            cell.source = for_markdown(cell.source)
    nb.metadata = _clean_metadata(nb.get("metadata"))
    ids = set()
    for cell in cells:  # a pasted cell keeps its id: give the copy a new one, as nbformat would
        if cell.id in ids:
            cell.id = random_cell_id()
        ids.add(cell.id)

    seen = set()  # as nbgrader's DeduplicateIds: the last cell with an id keeps it. Unlike it, cells marked as
    for cell in reversed(cells):  # nothing count too: overwritten from the master, each would be a test again
        grade_id = cell_grade_id(cell)
        if not isinstance(grade_id, str):
            continue
        if grade_id in seen:
            flags.append(f"duplicate cell id {grade_id!r}: the earlier copy was ignored")
            notes.append(f"Your notebook has two copies of the cell {grade_id!r} (a cell copied and pasted?). "
                         "Only the later copy was graded; delete the other one.")
            del cell.metadata["nbgrader"]
        seen.add(grade_id)

    restored = set()
    present = set()
    for index, cell in enumerate(cells):
        if "nbgrader" not in cell.metadata:
            continue
        grade_id = cell.metadata["nbgrader"].get("grade_id")
        if not isinstance(grade_id, str) or grade_id not in master:
            del cell.metadata["nbgrader"]  # as OverwriteCells: unknown ids are ignored (no id: no nbgrader cell)
            continue
        present.add(grade_id)
        want = master[grade_id]
        changed = cell.cell_type != want.cell_type
        if changed:
            cell = cells[index] = _retyped(cell, want.cell_type)
        cell.metadata["nbgrader"] = master_metadata(want)
        # The gradebook's copy of a test cell holds its hidden tests, so stock nbgrader always
        # overwrites it; an edit by the student shows against the released text.
        edited = want.release_source is not None and _normal(cell.source) != _normal(want.release_source)
        if want.locked and (changed or nbutils.compute_checksum(cell) != want.checksum):
            cell.source = want.source
        if (changed or edited) and want.is_test:
            restored.add(grade_id)
    if restored:
        flags.append("edited test cells put back from the master: " + ", ".join(sorted(restored)))
        notes.append("You changed these test cells: " + ", ".join(sorted(restored)) + ". The grader ran the "
                     "original tests instead; test cells are read-only.")

    missing = [c for c in task.tests() if c.grade_id not in present]
    for want in missing:
        cell = new_code_cell(source=RESTORED_NOTE + want.source)
        cell.metadata["nbgrader"] = master_metadata(want)
        cells.insert(_insert_position(cells, task, want.grade_id), cell)
    if missing:
        flags.append("deleted test cells put back from the master: " + ", ".join(c.grade_id for c in missing))
        notes.append("These test cells were missing from your notebook: " + ", ".join(c.grade_id for c in missing)
                     + ". The grader put the original tests back and ran them.")
    nb.cells = cells
    return bool(restored or missing)


def _normal(source):
    return "\n".join(line.rstrip() for line in source.replace("\r\n", "\n").strip().splitlines())


def _retyped(cell, cell_type):
    make = new_code_cell if cell_type == "code" else new_markdown_cell
    return make(source=cell.source, metadata=cell.metadata)


def master_metadata(cell: MasterCell) -> dict[str, Any]:
    meta = {"grade": cell.points is not None, "grade_id": cell.grade_id, "locked": cell.locked,
            "schema_version": 3, "solution": cell.solution, "task": False, "checksum": cell.checksum}
    if cell.points is not None:
        meta["points"] = cell.points
    return meta


def _insert_position(cells, task, grade_id):
    """Just after the nearest master cell before `grade_id` that the submission still has."""
    order = [c.grade_id for c in task.cells]
    index_of = {cell_grade_id(c): i for i, c in enumerate(cells)}
    for earlier in reversed(order[: order.index(grade_id)]):
        if earlier in index_of:
            return index_of[earlier] + 1
    return 0


MAX_EXTRA_FILES_MB = 16  # files handed in beside the notebook, in all; more is left out (and said)


def submission_with_master_files(submission: Submission, task: NotebookTask) -> dict[str, bytes]:
    """(path, bytes): the submission's own files, then the master's over them, as stock autograde lays out.

    A student file that would clash with a master file or folder (`helpers.py/x`, a file named
    `images`) is left out, and so is what lies beyond MAX_EXTRA_FILES_MB.
    """
    master = dict(task.files)
    folders = {os.path.dirname(p) for p in master} - {""}
    kept, room = {}, MAX_EXTRA_FILES_MB * 1024 * 1024
    for path, data in submission.files:
        if path in master:
            continue  # the master's copy goes over it, as in stock autograde
        if path in folders or any(path.startswith(m + "/") for m in master) \
                or any(f.startswith(path + "/") for f in folders):
            continue  # a file where the master has a folder, or a folder where it has a file
        if not path.endswith(".ipynb"):
            if len(data) > room:
                continue
            room -= len(data)
        kept[path] = data
    kept.update(master)
    return kept


def _fill_outputs(nb, run):
    """Put each cell's outputs into the notebook; cells that never ran get an error saying why."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if index in run.outputs:
            cell.outputs = [nbformat.from_dict(o) for o in run.outputs[index]]
            cell.execution_count = run.counts[index]
        else:
            why = run.stopped or "the cell did not run"
            cell.outputs = [nbformat.v4.new_output("error", ename="NotRun", evalue=why,
                                                   traceback=[f"NotRun: {why}"])]


def _score(nb, task, result, credit, told=None, exposed_at=None, broken=None):
    """Score each test cell with nbgrader's own rule, minus its stderr rule (see the README). A partial credit
    is the value the grader computed (`credit`, by cell index), never one the student's process displayed; it
    counts only as one finite real number, capped to the cell's points (nbgrader gives full marks to a value it
    cannot read). `told` gives the student's message where the grader's own run decided it; a NameError that
    follows from a broken cell before it (`broken`, see `_explain_broken_cells`) is said to follow from it."""
    told, broken = told or {}, broken or {}
    hidden_text = task.hidden_lines()
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            unchanged = meta.get("checksum") == nbutils.compute_checksum(cell)
            result.comments[f"{task.notebook}/{meta['grade_id']}"] = "No response." if unchanged else None
        if meta.get("grade") and meta.get("solution"):
            # An answer graded by hand: nbgrader's own rule, 0 when left as released, else a person's to grade.
            result.answers[f"{task.notebook}/{meta['grade_id']}"] = nbutils.determine_grade(cell)[0]
            continue
        if not meta.get("grade") or cell.cell_type != "code":
            continue
        points = float(meta.get("points", 0))
        judged = copy.deepcopy(cell)
        judged.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
        plan = task.plans.get(meta["grade_id"])
        why = ""
        if plan is not None:
            # nbgrader takes the first displayed value as the score, before any error: a value the
            # student's code displayed must not stand in for a test that does not compute one, nor for
            # the one the grader computed.
            judged.outputs = [o for o in judged.outputs if o.output_type not in ("execute_result", "display_data")]
            if plan.partial_credit and index in credit:
                number, why = credit[index]
                judged.outputs.append(_score_output(0.0 if why else number, points))
        else:  # judged inside: the value the student's process displayed, read as a number the same way
            why = _clamp_displayed(judged, points)
        try:
            score, max_score = nbutils.determine_grade(judged)
        except (ValueError, KeyError) as error:  # a displayed value nbgrader cannot read: the student's doing
            score, max_score, why = 0.0, points, f"the test's value cannot be read ({type(error).__name__})"
        score = float(score or 0.0)
        detail = _message(cell.outputs, score, max_score, hidden_text)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if index in told:
            message = told[index]
        elif _exposed(index, exposed_at) and errors:
            message = withheld(errors[-1].ename)
        else:
            message = (errors and _follows_from(errors[-1], index, broken)) or detail
        if why and not any(o.output_type == "error" for o in cell.outputs):
            message = f"partial credit: 0 of {max_score:g} ({why})"
            detail = message
        result.tests.append(TestResult(meta["grade_id"], task.part_of(meta["grade_id"]), score,
                                       float(max_score), message, detail=detail if detail != message else "",
                                       notebook=task.notebook))


def _score_output(number, points):
    """An execute_result holding a partial credit capped to [0, points], which nbgrader's rule reads as it is."""
    capped = min(max(number, 0.0), points)
    return nbformat.v4.new_output("execute_result", data={"text/plain": repr(float(capped))}, execution_count=None)


_NUMPY_SCALAR = re.compile(r"^(?:np|numpy)\.(?:float|int|uint)(?:8|16|32|64|128)?\((.{1,100})\)$")


def _displayed_number(text):
    """The number a displayed value shows (`0.5`, numpy 2's `np.float64(0.5)`), or None."""
    text = text.strip()
    match = _NUMPY_SCALAR.match(text)
    try:
        return float(match.group(1) if match else text)
    except ValueError:
        return None


def _clamp_displayed(cell, points):
    """A judged-inside cell's displayed value read as nbgrader reads it, with the kit's rule: a number (numpy's
    `np.float64(0.5)` too) is capped to [0, points], NaN and infinity score 0; other values are left to
    nbgrader's rule (full marks, as stock: the student's process decides a judged-inside test anyway).
    Returns why the value scores nothing, or ""."""
    for position, output in enumerate(cell.outputs):
        if output.output_type == "error":
            return ""
        if output.output_type != "execute_result":
            continue
        text = output.get("data", {}).get("text/plain", "")
        number = _displayed_number("".join(text) if isinstance(text, list) else str(text))
        if number is None:
            cell.outputs.pop(position)  # nbgrader gives full marks to a value it cannot read
            return ""
        why = "the test's value is NaN, not a number" if math.isnan(number) else \
            "the test's value is infinite" if math.isinf(number) else ""
        cell.outputs[position] = _score_output(0.0 if why else number, points)
        return why
    return ""


def _message(outputs, score, max_score, hidden):
    """What the student reads about one test: the error, never the hidden code or a traceback."""
    errors = [o for o in outputs if o.output_type == "error"]
    if errors:
        error = errors[-1]
        if error.ename == "CellTimeout":
            text = "the test ran out of time (an endless loop?)"
        elif error.ename == "TimedOutBefore":
            text = f"the test ran out of time: {error.evalue}"
        elif error.ename == "NotRun":
            text = f"not run: {error.evalue}"
        elif error.ename == "NotImplementedError":
            text = "not written yet: the function still raises NotImplementedError"
        elif error.evalue:
            text = f"{error.ename}: {error.evalue}"
        else:
            text = f"{error.ename}, with no message"
    elif score is not None and score < max_score:
        text = f"partial credit: {score:g} of {max_score:g}"
    else:
        text = "passed"
    kept = [line for line in text.splitlines() if not any(h in line for h in hidden)]
    return "\n".join(kept) if kept else f"{errors[-1].ename if errors else 'the test'} failed"


_NOT_THE_CELLS_OWN = {"NotRun", "CellTimeout", "TimedOutBefore"}
WITHHELD_CELLS = ("Some of your cells after a test with hidden checks stopped with an error. Their messages are not "
                  "shown (what your notebook reports after such a test stays with your instructor): run the "
                  "notebook in Jupyter to see them, and fix the first one.")  # the grader stopped it: said elsewhere


def _explain_broken_cells(nb, result, exposed_at=None):
    """A cell of the student's that raised (a syntax error in a solution cell, a failed import) defines
    nothing from the error on, so the tests that use it fail with a NameError that hides the cause.
    The student's page says which cell, which error and on which line (only the error's kind, after a cell
    that ran hidden tests in the student's process: see `_first_hidden_inside`)."""
    broken = {}  # index -> (the cell as the student sees it, names it would have defined)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or is_graded_cell(cell):
            continue
        errors = [o for o in cell.outputs if o.output_type == "error" and o.ename not in _NOT_THE_CELLS_OWN]
        if not errors:
            continue
        error, name = errors[-1], _cell_name(cell, index)
        broken[index] = (student_cell_name(cell), _names_defined(cell.source))
        lines = re.findall(r"Cell In\[\d+\], line (\d+)", "".join(error.traceback))
        where = f" on line {lines[-1]}" if lines else ""
        message = re.sub(r" \(<ipython-input-[^>]*>, line \d+\)$", "", error.evalue[:400])[:300]
        result.flags.append(f"{name} raised {error.ename}{where}")
        if _exposed(index, exposed_at):  # one note for all of them: a note per cell would carry a bit each
            if WITHHELD_CELLS not in result.notes:
                result.notes.append(WITHHELD_CELLS)
            continue
        result.notes.append(f"Your {student_cell_name(cell)} stopped with {error.ename}{where}: {message}. "
                            "Nothing it defines from that line on exists, so the tests that use it fail (often "
                            "with \"NameError: name ... is not defined\"). Fix this error first.")
    return broken


def _cell_name(cell, index):
    """The cell for the instructor: its grade_id, or its place in the notebook."""
    grade_id = cell_grade_id(cell)
    return grade_id or f"cell {index + 1}"


def student_cell_name(cell: NotebookNode) -> str:
    """The cell as the student sees it: a test by its name (as their page lists it), another cell by the function it
    defines, else by its first line of code."""
    meta = nbgrader_meta(cell)
    if meta.get("grade") and not meta.get("solution") and isinstance(meta.get("grade_id"), str):
        return f"test {meta['grade_id'].removeprefix('test_')}"
    defined = re.search(r"^def\s+(\w+)", cell.source, re.M)
    if defined:
        return f"cell defining {defined.group(1)}()"
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()
                  and not line.strip().startswith("#")), "")
    return f"cell starting `{first[:40]}{'...' if len(first) > 40 else ''}`" if first else "empty cell"


_DEFINES = re.compile(r"^(?:(?:def|class)\s+(\w+)|(\w+)\s*=(?!=))", re.M)


def _names_defined(source):
    """Names a cell defines at its top level (read line by line: the cell may not parse)."""
    return {function or variable for function, variable in _DEFINES.findall(source)}


def _follows_from(error, index, broken):
    """The student's message for a test's NameError that only follows from an earlier cell's own error, or None."""
    missing = re.fullmatch(r"name '(\w+)' is not defined", error.evalue) if error.ename == "NameError" else None
    for earlier, (cell, names) in sorted(broken.items()) if missing else ():
        if earlier < index and missing.group(1) in names:
            return (f"NameError: {missing.group(1)} is not defined, because your {cell} stopped with an error "
                    "before defining it (see the note above): fix that one first")
    return None


# Stock autograde's LimitOutput, with nbgrader's defaults (max_lines, max_traceback). Its rule is written out
# here: importing nbgrader's preprocessors costs half a second of nbconvert's modules in every process that
# grades (tests/test_conformance.py holds the two to the same output).
OUTPUT_LINES, TRACEBACK_LINES = 1000, 100


def _limit_output(nb):
    """As stock autograde's LimitOutput: a code cell's stream outputs keep their first 1000 lines in all (the
    output that crosses the limit ends with a note, later ones are dropped); a traceback over 100 lines keeps
    its first 50 and last 49 around a note."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept, lines = [], 0
        for output in cell.outputs:
            if output.output_type == "stream":
                if lines == OUTPUT_LINES:
                    continue
                text = output.text.split("\n")
                if lines + len(text) > OUTPUT_LINES:
                    text = text[:OUTPUT_LINES - lines - 1] + ["... Output truncated ..."]
                lines += len(text)
                output.text = "\n".join(text)
            kept.append(output)
        cell.outputs = kept
        for output in kept:
            if output.output_type == "error" and len(output.traceback) > TRACEBACK_LINES:
                first = TRACEBACK_LINES // 2
                last = TRACEBACK_LINES - first - 1
                output.traceback = [*output.traceback[:first], "... Traceback truncated ...",
                                    *output.traceback[-last:]]
