"""One student cannot stop the class: memory held outside the process, forged reports, hostile text.

Real sandboxes, a real memory cgroup where the machine gives one (as root here), and the real
report and terminal table.
"""
import subprocess
import sys

import pytest

from conftest import ROOT, make_course_copy, rnn
from grader.course import release
from grader.grade import batch
from grader import terminal
from grader.report import publish
from grader.run import execute, memory
import rnn_course
from rnn_course import samples
from grader.core.limits import Limits
from grader.core.model import CRASHED, GRADED, TAMPERING

SMALL = Limits(cell_timeout=20, notebook_budget=40, memory_mb=256)
GIGABYTE_IN_A_MEMFD = ("import os\nfd = os.memfd_create('hoard')\nchunk = b'x' * (1 << 20)\n"
                       "for i in range(1024):\n    os.write(fd, chunk)\nprint('held a gigabyte')\n")
GIGABYTE_IN_SHM = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                   "key = libc.shmget(0, 1 << 30, 0o1600)\nprint('shmget', key, ctypes.get_errno())\n"
                   "assert key < 0, 'a gigabyte of shared memory was allocated'\n")


def _wrong_answers():
    answers = samples.master_solutions()
    answers["rnn_cell_forward"] = samples.mutate(answers["rnn_cell_forward"], "np.tanh(", "sigmoid(")
    return answers


def _with_cell(nb, source, before="test_rnn_cell_forward"):
    from nbformat.v4 import new_code_cell
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == before)
    nb.cells.insert(index, new_code_cell(source))
    return nb


def _machine_gives_a_cgroup():
    folder = memory.make_batch_cgroup()
    memory.remove(folder)
    return bool(folder)


needs_cgroup = pytest.mark.skipif(not _machine_gives_a_cgroup(), reason="this machine gives no memory cgroup "
                                  "(the test below covers the sandbox without one)")
# Four dollars: matplotlib reads math between pairs, and \frac{1}{ is not valid math.
HOSTILE_TEXT = "=HYPERLINK(1) $\\frac{1}{$ costs $5 and $x^$ \x1b[2J\x1b[31m red \u202e"


@pytest.fixture(scope="module")
def hoarders(tmp_path_factory):
    """One batch, 256 MB a sandbox: a memfd hoarder, a shared-memory hoarder and a forger of reports beside
    honest students."""
    course_dir = make_course_copy(tmp_path_factory.mktemp("hoarders"))
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    samples.write(samples.fill(samples.master_solutions()), course_dir, "honest_correct")
    samples.write(samples.fill(_wrong_answers()), course_dir, "honest_wrong")
    correct = samples.master_solutions()
    samples.write(_with_cell(samples.fill(correct), GIGABYTE_IN_A_MEMFD, "test_rnn_forward"), course_dir,
                      "memfd_hoarder")
    samples.write(_with_cell(samples.fill(correct), GIGABYTE_IN_SHM), course_dir, "shm_hoarder")
    samples.write(_with_cell(samples.fill(correct), FORGED_FLOOD), course_dir, "forger")
    hostile = dict(correct, rnn_cell_forward=f"    raise ValueError({HOSTILE_TEXT!r})\n")
    for student in ("hostile_text", "hostile_text_too"):  # two: among the most common failures of the report
        samples.write(samples.fill(hostile), course_dir, student)
    done = batch.grade_batch(rnn(course_dir), limits=SMALL)
    assignment = done.spec
    published = publish.publish(rnn(course_dir), assignment)
    results, report = published.results, published.report
    return dict(course_dir=course_dir, done=done, results=results, report=report,
                table=terminal.score_table(results, assignment))


# Reports of outputs for cells the grader never asked about: 60 MB in 4 MB messages, every index.
FORGED_FLOOD = (
    "import os, struct, json\nnode = {'k': 'list', 'v': [{'k': 'int', 'v': '1'}] * 60000}\n"
    "body = json.dumps({'kind': 'calls', 'index': 99999, 'results': [node] * 4}).encode()\n"
    "sent = 0\nfor fd in range(3, 64):\n    for _ in range(15):\n        try:\n"
    "            os.write(fd, struct.pack('!I', len(body)) + body)\n            sent += 1\n"
    "        except OSError:\n            break\nprint('sent', sent)\n")


def test_the_honest_students_score_as_alone(hoarders):
    results = hoarders["done"].results
    assert results["honest_correct"].total == 120 and results["honest_correct"].status == GRADED
    assert results["honest_wrong"].total == 70


@needs_cgroup
def test_memory_in_a_memfd_is_charged_to_the_submission_and_stops_it_alone(hoarders):
    result = hoarders["done"].results["memfd_hoarder"]
    assert result.status == CRASHED and "ran out of memory" in result.reason, result.reason
    share = memory.share_mb(SMALL, charged=True)
    assert 0 < result.peak_mb <= share, (result.peak_mb, share)
    scores = {t.grade_id: t.score for t in result.tests}
    assert scores["test_rnn_cell_forward"] == 25, "the cells before the hoarding one were graded"


def test_shared_memory_beyond_the_share_is_never_handed_out(hoarders):
    result = hoarders["done"].results["shm_hoarder"]
    assert result.total == 120, (result.status, result.reason)


# System V message queues hold their messages in the kernel's memory (a new IPC namespace allows about 500 MB).
MESSAGE_QUEUE = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                 "queue = libc.msgget(0, 0o1600)\nprint('msgget', queue, ctypes.get_errno())\n")


def test_without_a_cgroup_memfd_shared_memory_and_message_queues_are_refused_in_the_sandbox():
    run = execute.run_cells([(0, GIGABYTE_IN_A_MEMFD), (1, GIGABYTE_IN_SHM), (2, MESSAGE_QUEUE)], {}, SMALL,
                            cgroup="")
    memfd, shm, queue = run.outputs[0], run.outputs[1], run.outputs[2]
    assert memfd[-1]["output_type"] == "error" and memfd[-1]["ename"] == "PermissionError", memfd
    assert not any(o["output_type"] == "error" for o in shm), shm
    assert "shmget -1 1" in shm[0]["text"], shm  # EPERM
    assert queue[0]["text"] == "msgget -1 1\n", queue
    spliced = execute.run_cells([(0, VMSPLICE)], {}, SMALL, cgroup="").outputs[0]
    assert spliced[0]["text"] == "vmsplice -1 1\n", spliced  # refused everywhere: EPERM


# Three processes started by a cell, 600 MB each: each within its own 1 GB address space, 1.8 GB together.
FORKED_HOARDERS = ("import os, time\nkids = []\nfor i in range(3):\n    pid = os.fork()\n    if pid == 0:\n"
                   "        held = bytearray(600 << 20)\n        held[::4096] = b'x' * len(held[::4096])\n"
                   "        time.sleep(30)\n        os._exit(0)\n    kids.append(pid)\n"
                   "for kid in kids:\n    os.waitpid(kid, 0)\nprint('held 1.8 GB')\n")
# The same in shared anonymous memory (Python's mmap.mmap(-1, n) maps it MAP_SHARED): the kernel counts it as
# shared memory, not as anonymous memory.
SHARED_HOARDERS = FORKED_HOARDERS.replace(
    "        held = bytearray(600 << 20)\n        held[::4096] = b'x' * len(held[::4096])\n",
    "        import mmap\n        held = mmap.mmap(-1, 600 << 20)\n"
    "        for at in range(0, 600 << 20, 4096):\n            held[at] = 1\n")
# A process whose first thread ends (SYS_exit, not exit_group) while a second one holds 950 MB: its own status
# file then shows no memory at all. Beside it, 850 MB in the notebook's own process.
HIDDEN_HOLDER = ("import os, time, threading, ctypes\nif os.fork() == 0:\n    def hold():\n"
                 "        time.sleep(0.5)  # once the first thread has ended\n        held = bytearray(950 << 20)\n        held[::4096] = b'x' * len(held[::4096])\n"
                 "        time.sleep(8)\n        os._exit(0)\n    threading.Thread(target=hold).start()\n"
                 "    import platform\n    ctypes.CDLL(None).syscall({'x86_64': 60, 'aarch64': 93}[platform.machine()], 0)\nvisible = bytearray(850 << 20)\n"
                 "visible[::4096] = b'y' * len(visible[::4096])\ntime.sleep(8)\nprint('held 1.8 GB')\n")
# The notebook's own process (PID 1 of the sandbox) ends its first thread; another starts two processes that hold
# 700 MB each. The first thread's link to the sandbox's root is then gone.
FIRST_THREAD_GONE = (
    "import os, time, threading, ctypes, platform\ndef hold():\n    time.sleep(0.3)\n    kids = []\n"
    "    for _ in range(2):\n        pid = os.fork()\n        if pid == 0:\n"
    "            held = bytearray(700 << 20)\n            held[::4096] = b'x' * len(held[::4096])\n"
    "            time.sleep(6)\n            os._exit(0)\n        kids.append(pid)\n"
    "    for kid in kids:\n        os.waitpid(kid, 0)\n    os._exit(0)\n"
    "threading.Thread(target=hold).start()\n"
    "ctypes.CDLL(None).syscall({'x86_64': 60, 'aarch64': 93}[platform.machine()], 0)\n")
# Pages handed to a pipe with vmsplice stay held by the pipe once unmapped (a whole huge page for each): no process
# holds them.
VMSPLICE = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nr, w = os.pipe()\n"
            "page = ctypes.create_string_buffer(4096)\n"
            "class iovec(ctypes.Structure):\n    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
            "v = iovec(ctypes.addressof(page), 4096)\nlibc.vmsplice.argtypes = [ctypes.c_int, ctypes.c_void_p, "
            "ctypes.c_ulong, ctypes.c_uint]\nprint('vmsplice', libc.vmsplice(w, ctypes.byref(v), 1, 0), "
            "ctypes.get_errno())\n")
# An honest cell that forks: 300 MB here and 300 MB in a child, 1 GB allowed.
FORKED_WORK = ("import os\nheld = bytearray(300 << 20)\nheld[::4096] = b'x' * len(held[::4096])\npid = os.fork()\n"
               "if pid == 0:\n    mine = bytearray(300 << 20)\n    mine[::4096] = b'y' * len(mine[::4096])\n"
               "    os._exit(0)\nos.waitpid(pid, 0)\nprint('done')\n")


def test_without_a_cgroup_what_the_processes_hold_together_is_counted_and_stopped_past_the_limit():
    """An ordinary user's machine: no cgroup; the watch outside the sandbox counts its processes together."""
    limits = Limits(cell_timeout=25, notebook_budget=40, memory_mb=1024)
    for hoarders in (FORKED_HOARDERS, SHARED_HOARDERS, HIDDEN_HOLDER, FIRST_THREAD_GONE):
        run = execute.run_cells([(0, hoarders), (1, "print('after')")], {}, limits, cgroup="")
        assert run.out_of_memory and "ran out of memory" in run.stopped, (hoarders, run.stopped, run.outputs)
        assert run.stopped_at == 0 and 1 not in run.outputs and not run.timed_out, "stopped for memory, not time"
    honest = execute.run_cells([(0, FORKED_WORK), (1, "print('after')")], {}, limits, cgroup="")
    assert not honest.stopped and not honest.out_of_memory, honest.stopped
    assert honest.outputs[0][0]["text"] == "done\n" and honest.outputs[1][0]["text"] == "after\n"
    assert 500 < honest.peak_mb <= memory.share_mb(limits, charged=False), honest.peak_mb  # reported, as a cgroup's


def test_a_student_exit_code_never_reads_as_the_watchs():
    run = execute.run_cells([(0, f"import os\nos._exit({memory.OUT_OF_MEMORY_EXIT})"), (1, "1")], {}, SMALL,
                            cgroup="")
    assert not run.out_of_memory and "exited with code 1" in run.stopped, run.stopped


def test_without_a_cgroup_a_sandbox_is_planned_at_its_limit_not_at_every_process_at_once():
    limits = Limits(memory_mb=2048)
    watched, charged = memory.share_mb(limits, charged=False), memory.share_mb(limits, charged=True)
    assert watched == charged + memory.OVERSHOOT_MB < limits.processes * limits.memory_mb
    plan = memory.plan(2, limits, use_cgroup=False)
    if memory.available_mb() * memory.RESERVE >= 2 * (watched + memory.WORKER_MB):
        assert plan.jobs == 2 and not plan.note  # both cores, on this machine's memory
    assert plan.how.startswith(f"{plan.jobs} at a time") and "a watch every 20 ms" in plan.how, plan.how
    assert "memory holds" in memory.plan(1000, limits, use_cgroup=False).how


def test_sandboxes_run_at_once_only_as_many_as_memory_holds():
    available = memory.available_mb()
    plan = memory.plan(1000, Limits(memory_mb=1024), use_cgroup=False)
    share = memory.share_mb(Limits(memory_mb=1024), charged=False)
    assert plan.jobs * (share + memory.WORKER_MB) <= available and plan.jobs < 1000
    assert "at a time, not 1000" in plan.note
    with pytest.raises(MemoryError, match="Lower --memory-mb"):
        memory.plan(1, Limits(memory_mb=available * 2), use_cgroup=False)


def test_reports_the_grader_never_asked_for_are_refused_and_flagged(hoarders):
    result = hoarders["done"].results["forger"]
    assert result.status == TAMPERING and "did not ask for" in result.reason, result.reason
    assert result.total < 120


def test_a_forged_flood_leaves_the_grading_process_memory_flat(hoarders, tmp_path):
    """The grading unit, in a process of its own, on the forger's notebook: its peak memory, as the kernel
    counts it, stays near what grading an honest notebook costs."""
    course_dir = hoarders["course_dir"]
    script = (
        "import resource, sys, tempfile\nfrom grader.course import assignments\nfrom grader.grade import batch\n"
        "from grader.judge import grading\n"
        "from grader.core.limits import Limits\n"
        "layout, student = assignments.find(sys.argv[1]), sys.argv[2]\n"
        "assignment = batch.load_assignment(layout, Limits(cell_timeout=20, notebook_budget=40))\n"
        "assignment, _ = batch.with_verdict(layout, assignment, tempfile.mkdtemp())\n"
        "result = grading.grade_submission(assignment, batch.read_submission(layout, student))\n"
        "print(result.status, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    peaks = {}
    for student in ("honest_correct", "forger"):
        done = subprocess.run([sys.executable, "-c", script, str(course_dir), student], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        status, peak = done.stdout.split("\n")[-2].rsplit(" ", 1)
        peaks[student] = int(peak) // 1024
    assert peaks["forger"] < peaks["honest_correct"] + 150, peaks


def test_student_text_is_text_in_the_chart_the_page_and_the_terminal(hoarders):
    """An error message with math, a formula and terminal control sequences, raised by the student's code:
    the class report (charts included) and the feedback page are written, and show it as text."""
    result = hoarders["results"]["hostile_text"]
    failed = [t.message for t in result.tests if not t.passed]
    assert any("$5" in m for m in failed), failed
    page = hoarders["report"].read_text()
    assert "<svg" in page and "Most common failure messages" in page
    assert "$\\frac{#}{$ costs $#" in page  # numbers blanked, to group failures
    feedback = rnn(hoarders["course_dir"]).feedback("hostile_text") / f"{rnn_course.NOTEBOOK}.html"
    assert "costs $5" in feedback.read_text()
    table = hoarders["table"]
    assert "\x1b" not in table and "\u202e" not in table


def test_a_csv_cell_never_starts_a_formula():
    from grader.core.plain_text import for_spreadsheet
    assert for_spreadsheet("=HYPERLINK(1)") == "'=HYPERLINK(1)" and for_spreadsheet("ok = 1") == "ok = 1"
    assert for_spreadsheet("-1+2") == "'-1+2" and "\x1b" not in for_spreadsheet("\x1b[2J")


def test_an_output_built_to_blow_up_in_the_replay_meets_a_memory_error_in_a_capped_worker(tmp_path):
    """The outside verdict runs the test's arithmetic on the student's outputs in a grading worker: an array
    of 5 MB that broadcasts against the expected value into 2 GB fails the test there, and the worker's
    memory stays within its cap."""
    script = (
        "import resource, numpy as np, sys\nfrom grader.core import wire\nfrom grader.judge import verdict\n"
        "from grader.run import calls, memory\n"
        "memory.cap_this_process(memory.WORKER_MB)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "source = 'import numpy as np\\nassert np.allclose(f(1), np.ones((5, 10)))\\n'\n"
        "plan = verdict.TestPlan('t', source, "
        "(calls.Call('f', wire.encode((1,)), wire.encode(np.ones((5, 10)))),))\n"
        "bomb = wire.encode(np.zeros((5_400_000, 1, 1), bool))\n"
        "judged = verdict.replay(plan, [bomb], [], sys.argv[1])\n"
        "print(judged.passed, judged.ename, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 - before)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    passed, ename, grown_mb = done.stdout.split()
    assert passed == "False" and ename == "MemoryError", done.stdout
    # The cap is the address space mapped when it was set plus WORKER_MB: what the process grew by stays below.
    assert int(grown_mb) < memory.WORKER_MB + 100, grown_mb
