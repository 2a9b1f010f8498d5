"""The runner's limits, on real forked processes: each stops what it should and keeps the rest."""
import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from conftest import from_another_test_worker
from grader.run import memory, sandbox
from grader.run.execute import Limits, run_cells

QUICK = Limits(cell_timeout=1, notebook_budget=4, memory_mb=1024, output_chars=2000)


def sandboxed_processes():
    """Processes alive under a sandbox's uid, but those of another test worker running beside this one
    (pytest-xdist): a runner that outlived its parent descends from no worker, so it counts."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid = int(re.search(r"^Uid:\s+(\d+)", status.read_text(), re.M).group(1))
        except (OSError, AttributeError):
            continue
        if uid >= sandbox.SANDBOX_UID_BASE and not from_another_test_worker(int(status.parent.name)):
            found.append(status.parent.name)
    return found


def kinds(run, index):
    return [(o["output_type"], o.get("ename") or o.get("name")) for o in run.outputs[index]]


def test_outputs_come_back_as_a_kernel_would_give_them():
    run = run_cells([(0, "x = 41\nprint('hi')\nx + 1"), (1, "import sys; print('oops', file=sys.stderr)"),
                     (2, "%matplotlib inline\nraise ValueError('boom')"), (3, "from IPython.display import display\n"
                                                                          "display('shown'); None")],
                    {}, QUICK)
    assert kinds(run, 0) == [("stream", "stdout"), ("execute_result", None)]
    assert run.outputs[0][1]["data"]["text/plain"] == "42"
    assert kinds(run, 1) == [("stream", "stderr")]
    assert kinds(run, 2) == [("error", "ValueError")]
    assert kinds(run, 3) == [("display_data", None)]
    assert not run.stopped and run.counts == {0: 1, 1: 2, 2: 3, 3: 4}


def test_endless_loop_costs_one_timeout_and_the_function_is_not_run_again():
    started = time.monotonic()
    run = run_cells([(0, "def stuck():\n    while True:\n        pass\n"), (1, "stuck()"), (2, "stuck()"),
                     (3, "print('independent cells still run')")], {}, QUICK)
    assert time.monotonic() - started < 3
    assert kinds(run, 1) == [("error", "CellTimeout")]
    assert kinds(run, 2) == [("error", "TimedOutBefore")]
    assert kinds(run, 3) == [("stream", "stdout")]
    assert run.timed_out == [1] and not run.stopped


def test_code_that_ignores_the_alarm_is_killed_at_the_budget():
    started = time.monotonic()
    run = run_cells([(0, "print('before')"), (1, "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                               "while True:\n    pass"), (2, "print('after')")],
                    {}, Limits(cell_timeout=1, notebook_budget=2))
    assert time.monotonic() - started < 10
    assert run.killed and "time budget of 2 s" in run.stopped and run.stopped_at == 1
    assert kinds(run, 0) == [("stream", "stdout")] and 2 not in run.outputs
    time.sleep(0.5)
    assert sandboxed_processes() == []  # the killed runner did not outlive its parent


def test_memory_cap_raises_memory_error_in_the_cell():
    run = run_cells([(0, "import numpy as np\nbig = np.ones(10**9)"), (1, "print('still here')")], {}, QUICK)
    assert kinds(run, 0) == [("error", "MemoryError")]
    assert kinds(run, 1) == [("stream", "stdout")]


def test_output_cap_cuts_the_text_once():
    run = run_cells([(0, "print('x' * 5000)"), (1, "print('more')")], {}, QUICK)
    assert run.truncated
    assert len(run.outputs[0][0]["text"]) < 2200 and "output cut here" in run.outputs[0][0]["text"]
    assert run.outputs[1] == []


def test_a_process_that_exits_is_reported_as_such():
    run = run_cells([(0, "print(1)"), (1, "import os; os._exit(3)"), (2, "print(2)")], {}, QUICK)
    assert "exited with code 3" in run.stopped and run.stopped_at == 1
    assert 0 in run.outputs and 2 not in run.outputs


def test_a_notebook_that_exits_while_the_kernel_frees_its_files_is_reported_as_exiting_not_out_of_memory():
    """A process that exits drops its root before the kernel closes its last files; freeing a large in-memory
    file (shared memory, here) then takes tens of milliseconds, in which the watch (no cgroup) can see no thread
    with files. It exited on its own, and the report says so (it said "out of memory" now and then, as CI once
    saw)."""
    code = ("import mmap, os\nshared = mmap.mmap(-1, 500 << 20)\nblock = b'x' * (1 << 20)\n"
            "for _ in range(500):\n    shared.write(block)\nos._exit(3)")
    # Writing 500 MB takes a second of a busy machine's time: the cell's time limit is not what is tested here.
    roomy = dataclasses.replace(QUICK, cell_timeout=30, notebook_budget=60)
    for _ in range(3):
        run = run_cells([(0, code)], {}, roomy)
        assert "exited with code 3" in run.stopped, run.stopped


def test_a_sandbox_that_has_just_ended_is_not_taken_for_one_that_hides_its_memory():
    """Between its exit and its parent's wait, a process is a zombie: its /proc links are gone as they are for a
    process whose first thread ended to hide its memory. The watch (no cgroup) takes it as ended, not as hiding:
    a notebook that exits is reported as such, not as out of memory."""
    child = os.fork()
    if child == 0:
        os._exit(3)
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        watch = memory.Watch(child, 100, 0)
        assert not watch.over() and watch.held() == 0
    finally:
        os.waitpid(child, 0)


def test_the_assignments_modules_come_compiled_and_a_changed_one_runs_its_new_code():
    """The grader hands each sandbox the assignment's own modules compiled (checked against the source's hash),
    so that no sandbox compiles them again; a notebook that rewrites one imports what it wrote, as without."""
    from grader.judge.grading import _bytecode
    source = b"VALUE = 'as handed out'\n"
    where, compiled = _bytecode("helper.py", source)
    assert where == f"__pycache__/helper.{sys.implementation.cache_tag}.pyc"
    check = ("import importlib.util, helper\n"
             "data = open(importlib.util.cache_from_source(helper.__file__), 'rb').read()\n"
             "print(helper.VALUE, data[8:16] == importlib.util.source_hash(open(helper.__file__, 'rb').read()))")
    rewrite = ("import importlib\nopen('helper.py', 'w').write('VALUE = \"rewritten\"\\n')\n"
               "print(importlib.reload(helper).VALUE)")
    run = run_cells([(0, check), (1, rewrite)], {"helper.py": source, where: compiled}, QUICK)
    assert run.outputs[0][0]["text"] == "as handed out True\n", run.outputs
    assert run.outputs[1][0]["text"] == "rewritten\n", run.outputs
    assert _bytecode("broken.py", b"def (:\n") is None  # left to the import to report, as without


def test_a_fork_server_told_the_release_knows_its_transforms_and_a_notebooks_own_transform_still_applies(tmp_path):
    """The release's cells have IPython's transforms worked out once, in the fork server (a sandbox looks them up);
    a notebook that adds a transform of its own gets it applied to those cells too, as in IPython."""
    script = tmp_path / "check_cells.py"  # a file: the process started from the fork server imports its function
    script.write_text(
        "import sys\n"
        "from IPython.core.inputtransformer2 import TransformerManager\n"
        "from grader.run import execute, warm\n"
        "CELL = 'x = 1\\n%time y = 2\\n!true\\n'\n"
        "def check(conn):\n"
        "    shell = execute._shell()\n"
        "    known = CELL in shell.input_transformer_manager.known\n"
        "    same = shell.transform_cell(CELL) == TransformerManager().transform_cell(CELL)\n"
        "    shell.input_transformers_cleanup.append(lambda lines: ['x = 99\\n'])\n"
        "    conn.send([known, same, shell.transform_cell(CELL)])\n"
        "if __name__ == '__main__':\n"
        "    ctx = warm.context(cells=[CELL])\n"
        "    r, w = ctx.Pipe(duplex=False)\n"
        "    p = ctx.Process(target=check, args=(w,))\n"
        "    p.start(); print(r.recv()); p.join()\n")
    root = Path(__file__).resolve().parent.parent
    shown = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(root)})
    assert shown.stdout.strip() == "[True, True, 'x = 99\\n']", shown.stdout + shown.stderr


def test_a_cell_that_awaits_at_its_top_level_runs_as_in_jupyter():
    run = run_cells([(0, "import asyncio\nawait asyncio.sleep(0)\nprint('awaited')"),
                     (1, "async def twice(x):\n    return 2 * x\nprint(await twice(21))")], {}, QUICK)
    assert [o.get("text") for o in run.outputs[0]] == ["awaited\n"], run.outputs
    assert [o.get("text") for o in run.outputs[1]] == ["42\n"], run.outputs


def test_each_submission_gets_a_fresh_process():
    first = run_cells([(0, "import os\nleft_over = 1\nos.getpid()")], {}, QUICK)
    second = run_cells([(0, "'left_over' in globals()")], {}, QUICK)
    assert second.outputs[0][0]["data"]["text/plain"] == "False"
    assert first.outputs[0][0]["data"]["text/plain"] != str(__import__("os").getpid())


def test_figures_are_built_but_not_drawn_and_nothing_reaches_stderr():
    run = run_cells([(0, "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n"
                         "import matplotlib; print(matplotlib.get_backend())")], {}, QUICK)
    assert kinds(run, 0) == [("stream", "stdout")]
    assert "grader.run.plot_backend" in run.outputs[0][0]["text"]


def test_the_modules_a_notebook_imports_are_found_for_the_fork_server_to_import_ahead():
    """Module-level imports of the environment's modules, as written (submodules too); never the course's own
    files, a relative import, one inside a function, or a module that does something when imported."""
    from grader.run import warm
    cells = ["%matplotlib inline\nimport numpy as np\nfrom fractions import Fraction",
             "import sklearn.model_selection, this\nfrom . import sibling\nimport rnn_checks",
             "def f():\n    import decimal\n", "import antigravity", "not python ("]
    found = warm.modules_imported(cells)
    assert found[:2] == ("numpy", "fractions")
    assert "decimal" not in found and "this" not in found and "antigravity" not in found
    assert "rnn_checks" not in found and "sibling" not in found


def test_a_fork_server_told_the_modules_imports_them_before_any_sandbox_starts(tmp_path):
    script = tmp_path / "check_warm.py"  # a file: the process started from the fork server imports its function
    script.write_text(
        "import os, sys\n"
        "from grader.run import warm\n"
        "def check(conn):\n"
        "    conn.send(['mailbox' in sys.modules, 'TRUSTED_GRADER_WARM_MODULES' in os.environ])\n"
        "if __name__ == '__main__':\n"
        "    ctx = warm.context(modules=tuple(sys.argv[1:]))\n"
        "    r, w = ctx.Pipe(duplex=False)\n"
        "    p = ctx.Process(target=check, args=(w,))\n"
        "    p.start(); print(r.recv()); p.join()\n")
    root = Path(__file__).resolve().parent.parent
    for modules, expected in ((["mailbox", "no_such_module_at_all"], "[True, False]"), ([], "[False, False]")):
        shown = subprocess.run([sys.executable, str(script), *modules], cwd=root, capture_output=True, text=True,
                               timeout=120, env={**os.environ, "PYTHONPATH": str(root)})
        assert shown.stdout.strip() == expected, shown.stdout + shown.stderr
