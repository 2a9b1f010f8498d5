"""Trusted grading, tried as a determined student would: through the real grader, on real forks and namespaces.

One batch grades an adversarial corpus beside honest controls. Every trick sits on top
of a wrong rnn_cell_forward (sigmoid for tanh), whose honest score is 70 of 120: a trick
that works would show as more.
"""
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from conftest import (DEMO_LIMITS, INSTRUCTOR_SECRET, ROOT, fresh_setups, from_another_test_worker, make_course_copy, rnn,
                      rnn_scores)
from grader.course import release
from grader.grade import batch
from grader.report import publish
from grader.run import calls
import rnn_course
from rnn_course import samples
from grader.core.model import TAMPERING

HONEST_WRONG_TOTAL = 70  # rnn_cell_forward and rnn_forward lost (25 + 25), everything else right


def _wrong_answers():
    answers = samples.master_solutions()
    answers["rnn_cell_forward"] = samples.mutate(answers["rnn_cell_forward"], "np.tanh(", "sigmoid(")
    return answers


def _different_but_right():
    """Correct answers written another way: their outputs differ from the master's in the last bits,
    so the outside verdict replays every test instead of recognising the master's outputs."""
    answers = samples.master_solutions()
    answers["rnn_cell_forward"] = samples.mutate(answers["rnn_cell_forward"], "np.tanh(Waa @ a_prev + Wax @ xt + ba)",
                                                     "np.tanh(ba + np.dot(Wax, xt) + np.dot(Waa, a_prev))")
    answers["lstm_cell_forward"] = samples.mutate(answers["lstm_cell_forward"], "c_next = ft * c_prev + it * cct",
                                                      "c_next = it * cct + c_prev * ft")
    return answers


def _with_cell(nb, source, before="test_rnn_cell_forward"):
    """The notebook with a cell of the student's own inserted before the cell `before`."""
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == before)
    nb.cells.insert(index, new_code_cell(source))
    return nb


# ---------------------------------------------------------------- tricks on the verdict

VERDICT_TRICKS = {
    "patches_numpy_and_checks": (
        "import numpy as np\nnp.allclose = lambda *a, **k: True\n"
        "np.isclose = lambda a, b, **k: np.ones(np.shape(a), bool)\n"
        "import rnn_checks\nfor name in dir(rnn_checks):\n"
        "    if name.startswith('check_'):\n        setattr(rnn_checks, name, lambda *a, **k: None)\n"),
    "replaces_import_builtin": (
        "import builtins, types\n_real_import = builtins.__import__\n"
        "def _fake_import(name, *args, **kwargs):\n    module = _real_import(name, *args, **kwargs)\n"
        "    if name == 'rnn_checks':\n        fake = types.SimpleNamespace(**vars(module))\n"
        "        for key in vars(module):\n            if key.startswith('check_'):\n"
        "                setattr(fake, key, lambda *a, **k: None)\n        return fake\n    return module\n"
        "builtins.__import__ = _fake_import\n"),
    "swallows_errors_with_custom_exc": (  # after rnn_checks' own handler is in place, so that it replaces it
        "import rnn_checks\nget_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)\n"),
    "input_transformer_drops_checks": (
        "get_ipython().input_transformers_post.append(lambda lines: [l for l in lines if not l.startswith('check_')])\n"),
    "post_run_hook_clears_errors": (
        "import sys\ndef _clear(result):\n    collector = sys.modules['grader.run.execute']._current\n"
        "    collector.items[:] = [o for o in collector.items if o['output_type'] != 'error']\n"
        "get_ipython().events.register('post_run_cell', _clear)\n"),
    "hides_tracebacks": "get_ipython()._showtraceback = lambda *args, **kwargs: None\n",
    "traces_test_frames": (
        "import sys\nseen = []\ndef _trace(frame, event, arg):\n    seen.append(frame.f_code.co_filename)\n"
        "    return None\nsys.settrace(_trace)\n"),
    "always_equal_arrays": (
        "import numpy as np\nclass Liar(np.ndarray):\n    def __eq__(self, other):\n        return True\n"
        "    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):\n"
        "        return np.ones(np.broadcast_shapes(*[np.shape(i) for i in inputs]), bool)\n"
        "_honest = rnn_cell_forward\ndef rnn_cell_forward(xt, a_prev, parameters):\n"
        "    a_next, yt_pred, cache = _honest(xt, a_prev, parameters)\n"
        "    a_next, yt_pred = a_next.view(Liar), yt_pred.view(Liar)\n"
        "    return a_next, yt_pred, (a_next, a_prev, xt, parameters)\n"),
    "displays_a_score_before_failing": (
        "_honest = rnn_cell_forward\ndef rnn_cell_forward(xt, a_prev, parameters):\n"
        "    get_ipython().displayhook.write_format_data({{'text/plain': 'ok'}})\n"
        "    return _honest(xt, a_prev, parameters)\n"),
    "displays_an_out_of_range_score": (
        "_honest = rnn_cell_forward\ndef rnn_cell_forward(xt, a_prev, parameters):\n"
        "    get_ipython().displayhook.write_format_data({{'text/plain': '999'}})\n"
        "    return _honest(xt, a_prev, parameters)\n"),
    "forges_messages_with_pickle": (
        "import os, struct, json, pickle\nclass Payload:\n    def __reduce__(self):\n"
        "        return (os.system, ('touch {marker}',))\n"
        "for fd in range(3, 64):\n    for body in (pickle.dumps(Payload()), json.dumps({{'kind': 'done'}}).encode()):\n"
        "        try:\n            os.write(fd, struct.pack('!I', len(body)) + body)\n        except OSError:\n"
        "            pass\n"),
    "forges_passing_test_reports": (
        "import os, struct, json\nfor fd in range(3, 64):\n    for index in {test_indexes}:\n"
        "        body = json.dumps({{'kind': 'cell', 'index': index, 'outputs': [], 'count': 1, "
        "'timed_out': False, 'truncated': False}}).encode()\n"
        "        try:\n            os.write(fd, struct.pack('!I', len(body)) + body)\n        except OSError:\n"
        "            pass\nos._exit(0)\n"),
}

# ---------------------------------------------------------------- tries to reach the grader or the course

REACH_TRIES = {
    "reads_the_course": (
        "import glob, os\nfor path in {secrets}:\n"
        "    try:\n        print(path, open(path, errors='replace').read()[:100000])\n"
        "    except Exception as error:\n        print(path, type(error).__name__)\n"
        "print(os.listdir('/'), glob.glob('/*/*.ipynb') + glob.glob('/*/*/*.ipynb') + glob.glob('/*/*.db'))\n"
        "for path in ('/proc/self/environ', '/proc/1/environ'):\n    try:\n        print(open(path).read())\n"
        "    except OSError as error:\n        print(path, type(error).__name__)\nprint(dict(os.environ))\n"
        "import gc\nprint('master outputs', sum(1 for o in gc.get_objects() if type(o).__name__ == 'Call'"
        " and getattr(o, 'master_output', None) is not None))\n"
        "try:\n    import rnn_course.samples\n    print(rnn_course.samples.master_solutions())\n"
        "except Exception as error:\n    print('grader', type(error).__name__)\n"),
    "writes_the_course": (
        "for path in {targets}:\n    try:\n        with open(path, 'a') as f:\n            f.write('owned')\n"
        "        print('WROTE', path)\n    except Exception as error:\n        print(path, type(error).__name__)\n"),
    "signals_and_traces_the_grader": (
        "import os, signal, ctypes\nfor pid in ({grader_pid}, -1, 0, 1):\n    for sig in (signal.SIGSTOP, signal.SIGKILL):\n"
        "        try:\n            os.kill(pid, sig)\n        except Exception as error:\n"
        "            print(pid, sig, type(error).__name__)\n"
        "print('ptrace', ctypes.CDLL(None).ptrace(16, {grader_pid}, 0, 0))\n"),
    "holds_the_gradebook_lock": (
        "import sqlite3, time\ntry:\n    db = sqlite3.connect({gradebook!r}, timeout=1)\n"
        "    db.execute('BEGIN EXCLUSIVE')\n    time.sleep(3)\nexcept Exception as error:\n"
        "    print(type(error).__name__, error)\n"),
    "leaves_processes_behind": (
        "import os, subprocess, time\nsubprocess.Popen(['sleep', '{linger}'])\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(3)\n"
        "        open({late_file!r}, 'w').write('late')\n        os._exit(0)\n    os._exit(0)\n"),
    "forks_until_refused": (
        "import os, time\nmade = 0\nfor i in range(2000):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
        "    made += 1\nprint('forked', made)\n"),
    "floods_disk_output_and_pipe": (
        "import os, struct\nfor folder in ('/tmp', '.'):\n    try:\n"
        "        with open(os.path.join(folder, 'big'), 'wb') as f:\n"
        "            for _ in range(1024):\n                f.write(b'x' * (1 << 20))\n"
        "    except OSError as error:\n        print(folder, error.strerror)\nprint('y' * 10_000_000)\n"),
    "forges_a_flood_of_output": (
        "import os, struct, json\nbody = json.dumps({{'kind': 'cell', 'index': {own_index}, 'outputs': "
        "[{{'output_type': 'stream', 'name': 'stdout', 'text': 'z' * 15_000_000}}], 'count': 1, "
        "'timed_out': False, 'truncated': False}}).encode()\nfor fd in range(3, 64):\n    try:\n"
        "        os.write(fd, struct.pack('!I', len(body)) + body)\n    except OSError:\n        pass\n"),
    "connects_to_the_network": (
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hello')\n"
        "    print('CONNECTED')\nexcept OSError as error:\n    print(type(error).__name__, error)\n"),
}

# Sent as the outputs of test_rnn_cell_forward's calls, while that test cell runs.
SHARED_STRUCTURE = (
    "import os, struct, json\nnode = {{'k': 'list', 'v': [{{'k': 'float', 'v': '0x0p+0'}}]}}\n"
    "for level in range(40):\n    node = {{'k': 'list', 'v': [node, {{'k': 'ref', 'path': ['out', 0]}}]}}\n"
    "body = json.dumps({{'kind': 'calls', 'index': {test_index}, 'results': [node] * 4}}).encode()\n"
    "for fd in range(3, 64):\n    try:\n        os.write(fd, struct.pack('!I', len(body)) + body)\n"
    "    except OSError:\n        pass\n")

LINGER = "637.25"


def _digest(paths):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def _sandbox_processes():
    """Processes still alive that a sandbox started (its uid range, or the linger marker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            uid = int(re.search(r"^Uid:\s+(\d+)", (entry / "status").read_text(), re.M).group(1))
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, AttributeError):
            continue
        if (uid >= 1_900_000_000 or LINGER.encode() in cmdline) and not from_another_test_worker(int(entry.name)):
            found.append((entry.name, uid, cmdline[:80]))
    return found


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """One batch: the attacks, an honest correct and an honest wrong submission, graded together."""
    course_dir = make_course_copy(tmp_path_factory.mktemp("attacked"))
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    marker = tmp_path_factory.mktemp("host") / "PWNED"
    late_file = tmp_path_factory.mktemp("late") / "late.txt"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    connections = []

    def accept():
        while not stop.is_set():
            try:
                connections.append(listener.accept())
            except OSError:
                pass
    stop = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    samples.write(samples.fill(samples.master_solutions()), course_dir, "honest_correct")
    samples.write(samples.fill(_wrong_answers()), course_dir, "honest_wrong")
    samples.write(samples.fill(_different_but_right()), course_dir, "honest_different")
    probe = samples.fill(_wrong_answers())
    test_indexes = [i for i, c in enumerate(probe.cells) if c.metadata.get("nbgrader", {}).get("grade")]
    for name, trick in VERDICT_TRICKS.items():
        source = trick.format(marker=marker, test_indexes=[i + 1 for i in test_indexes])
        samples.write(_with_cell(samples.fill(_wrong_answers()), source), course_dir, name)

    master = course_dir / "source" / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.ipynb"
    other = course_dir / "submitted" / "honest_correct" / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.ipynb"
    secrets = [str(master), str(course_dir / "gradebook.db"), str(other), "/root/.bashrc", "/proc/1/environ",
               str(ROOT / "source" / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.ipynb")]
    gradebook = course_dir / "gradebook.db"  # the grader writes it; the student must not
    protected = [course_dir / "nbgrader_config.py", master, other, ROOT / "grader" / "__init__.py",
                 ROOT / "nbgrader_config.py"]
    values = dict(secrets=secrets, targets=[str(p) for p in protected + [gradebook]], grader_pid=os.getpid(),
                  gradebook=str(course_dir / "gradebook.db"), linger=LINGER, late_file=str(late_file),
                  port=listener.getsockname()[1], own_index=test_indexes[0])
    for name, trick in REACH_TRIES.items():
        samples.write(_with_cell(samples.fill(_wrong_answers()), trick.format(**values)), course_dir, name)
    samples.write(_with_cell(samples.fill(samples.master_solutions()),
                                 SHARED_STRUCTURE.format(test_index=test_indexes[0] + 1)),
                      course_dir, "forges_a_shared_structure")
    # Files handed in beside the notebook: one where the assignment has a file, one where it has a
    # folder, and one far too big. None may stop the grading of anyone else.
    extra = samples.write(samples.fill(_wrong_answers()), course_dir, "hands_in_clashing_files").parent
    (extra / "rnn_checks.py").mkdir()
    (extra / "rnn_checks.py" / "x").write_text("x")
    (extra / "images").write_text("not a folder")
    (extra / "big.bin").write_bytes(bytes(70 * 1024 * 1024))

    watched = protected + list((course_dir / "source").rglob("*")) + list((course_dir / "release").rglob("*"))
    before = _digest(watched)
    old_handler = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        done = batch.grade_batch(rnn(course_dir), limits=DEMO_LIMITS)
        assignment = done.spec
        publish.publish(rnn(course_dir), assignment)  # the CSV, the report and the feedback pages, as `grade` does
    finally:
        signal.signal(signal.SIGTERM, old_handler)
    time.sleep(4)  # past the moment a lingering process would write its late file
    stop.set()
    thread.join()
    listener.close()
    return dict(course_dir=course_dir, done=done, assignment=assignment, before=before, watched=watched,
                marker=marker, late_file=late_file, connections=connections)


@pytest.mark.parametrize("name", ["honest_correct", "honest_different"])
def test_an_honest_correct_submission_gets_full_marks_in_the_sandbox(attacked, name):
    result = attacked["done"].results[name]
    assert result.total == 120 and result.status == "graded" and result.confined and not result.review


@pytest.mark.parametrize("name", sorted(VERDICT_TRICKS) + sorted(REACH_TRIES))
def test_no_trick_scores_more_than_the_honest_work_under_it(attacked, name):
    results = attacked["done"].results
    assert results["honest_wrong"].total == HONEST_WRONG_TOTAL
    result = results[name]
    assert result.total <= HONEST_WRONG_TOTAL, (name, result.status, result.reason)
    scores = {t.grade_id: t.score for t in result.tests}
    assert scores["test_rnn_cell_forward"] == 0 and scores["test_rnn_forward"] == 0
    # The gradebook, which formgrader and nbgrader export read, says the same.
    assert rnn_scores(attacked["course_dir"])[name]["test_rnn_cell_forward"] == 0


@pytest.mark.parametrize("name", ["patches_numpy_and_checks", "replaces_import_builtin",
                                  "swallows_errors_with_custom_exc", "input_transformer_drops_checks",
                                  "post_run_hook_clears_errors", "hides_tracebacks"])
def test_a_test_fooled_inside_is_caught_outside_and_flagged(attacked, name):
    result = attacked["done"].results[name]
    assert result.status == TAMPERING, (result.status, result.reason)
    assert "tampering suspected in test_rnn_cell_forward" in result.reason


@pytest.mark.parametrize("name, flag", [
    ("patches_numpy_and_checks", "patching np"), ("replaces_import_builtin", "patching builtins"),
    ("swallows_errors_with_custom_exc", "IPython hooks"), ("traces_test_frames", "tracing or frame access"),
    ("always_equal_arrays", "objects that redefine comparison"),
    ("forges_messages_with_pickle", "signal or process control"),
    ("signals_and_traces_the_grader", "ctypes or native code"),
    ("holds_the_gradebook_lock", "database or file access"), ("reads_the_course", "database or file access"),
])
def test_the_code_scan_flags_what_tampering_uses(attacked, name, flag):
    assert any(f.startswith(flag) for f in attacked["done"].results[name].review), \
        attacked["done"].results[name].review


def test_a_forged_shared_structure_is_refused_before_the_grader_expands_it(attacked):
    """Right code in the notebook, but the test's outputs forged as a structure that doubles at
    every level (2**40 leaves if expanded): refused as malformed data, in no time."""
    result = attacked["done"].results["forges_a_shared_structure"]
    scores = {t.grade_id: t.score for t in result.tests}
    assert result.status == TAMPERING and scores["test_rnn_cell_forward"] == 0, result.reason
    assert "malformed data" in result.reason and result.seconds < 30


def test_no_student_can_cause_a_grader_error(attacked):
    assert all(r.status != "grader error" for r in attacked["done"].results.values())


def test_forged_messages_are_data_never_code(attacked):
    result = attacked["done"].results["forges_messages_with_pickle"]
    assert not attacked["marker"].exists()  # the pickle was never loaded
    assert "malformed data" in result.reason


def test_nothing_of_the_course_changed_and_no_process_is_left(attacked):
    assert _digest(attacked["watched"]) == attacked["before"]
    assert b"owned" not in (attacked["course_dir"] / "gradebook.db").read_bytes()
    assert not attacked["late_file"].exists()
    # A sandbox of another test worker that is being torn down (its runner killed, its parent gone) descends from
    # no worker for a moment: it goes within seconds, where a process left behind stays.
    deadline = time.monotonic() + 10
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sandbox_processes() == []
    assert attacked["connections"] == []
    assert "WROTE" not in _outputs(attacked, "writes_the_course")
    for student in REACH_TRIES:  # no flood reached the autograded notebooks
        notebook = attacked["course_dir"] / "autograded" / student / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.ipynb"
        assert notebook.stat().st_size < 2_000_000, student


def test_the_batch_survived_and_every_other_result_stands(attacked):
    done = attacked["done"]
    assert not done.pending and len(done.graded) == len(VERDICT_TRICKS) + len(REACH_TRIES) + 5
    clashing = done.results["hands_in_clashing_files"]
    assert clashing.total == HONEST_WRONG_TOTAL and "files left out" in clashing.reason, clashing.reason
    gradebook = rnn_scores(attacked["course_dir"])
    assert sum(gradebook["honest_correct"].values()) == 120
    assert sum(gradebook["honest_wrong"].values()) == HONEST_WRONG_TOTAL


def _outputs(attacked, student):
    nb = nbformat.read(str(attacked["course_dir"] / "autograded" / student / rnn_course.ASSIGNMENT
                           / f"{rnn_course.NOTEBOOK}.ipynb"), as_version=4)
    return "\n".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_hidden_tests_reach_no_output_and_no_feedback(attacked):
    hidden = attacked["assignment"].hidden_lines()
    numbers = {n for line in hidden for n in re.findall(r"-?\d+\.\d{5,}", line)}
    assert hidden and numbers
    for student in list(VERDICT_TRICKS) + list(REACH_TRIES):
        folder = attacked["course_dir"] / "autograded" / student / rnn_course.ASSIGNMENT
        page = attacked["course_dir"] / "feedback" / student / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.html"
        texts = [_outputs(attacked, student), page.read_text(),
                 (folder / batch.RESULT_FILE).read_text()]
        for text in texts:
            assert not any(line in text for line in hidden), student
            # The seeded values of the wrong function's hidden asserts: a wrong answer never prints them.
            assert not any(n in text for n in numbers if n.lstrip("-").startswith("0.5958")), student
    reads = _outputs(attacked, "reads_the_course")
    assert "FileNotFoundError" in reads and "BEGIN HIDDEN TESTS" not in reads and "BEGIN SOLUTION" not in reads
    assert "grader ModuleNotFoundError" in reads and "PATH" in reads
    assert INSTRUCTOR_SECRET not in reads and "master outputs 0" in reads


# ---------------------------------------------------------------- the sandbox's parts, one by one

def test_as_an_ordinary_user_the_sandbox_uses_a_user_namespace_and_confines_the_same():
    """The mode an unprivileged instructor gets: a user namespace, every capability dropped."""
    from grader.run.execute import run_cells
    probe = ("import os\nprint(open('/proc/self/uid_map').read().split())\n"
             f"print(os.path.exists({str(ROOT / 'source')!r}), os.listdir('/'))\n"
             "import ctypes\nprint('unshare', ctypes.CDLL(None).unshare(0x10000000))\n"
             "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n")
    run = run_cells([(0, probe)], {"rnn_utils.py": b"# provided\n"}, DEMO_LIMITS, use_user_namespace=True)
    text = run.outputs[0][0]["text"]
    assert "['0', '0', '1']" in text.splitlines()[0]  # only our own uid exists inside
    assert "False" in text and "'submission'" in text and "unshare -1" in text
    assert text.splitlines()[-1] == "0000000000000000"  # no capability left


def test_the_students_data_is_checked_before_use():
    from grader.core import wire
    good = wire.encode((np_array := __import__("numpy").arange(6.0).reshape(2, 3), [np_array]))
    value = wire.decode(good)
    assert value[1][0] is value[0] and value[0].shape == (2, 3)
    bad = [{"k": "array", "dtype": "|O", "shape": [1], "data": ""},               # object arrays
           {"k": "array", "dtype": "<f8", "shape": [1000], "data": "AAAA"},       # shape larger than its data
           {"k": "ref", "path": ["in", 0]},                                      # nothing to refer to
           {"k": "pickle", "v": "gASV"},                                         # unknown kinds
           {"k": "int", "v": "9" * 5000}]                                        # oversized numbers
    for node in bad:
        with pytest.raises(wire.WireError):
            wire.decode(node)
    with pytest.raises(wire.WireError):
        wire.loads(b"\x80\x04\x95" + b"x" * 10, 1000)  # a pickle is not a message
    with pytest.raises(wire.WireError):
        wire.loads(b'{"kind": "done", "x": NaN}', 1000)


def _grade_where_namespaces_are_refused(course_dir, setups):
    from grader.run import sandbox
    return subprocess.run([sys.executable, "-m", "grader", "--course-dir", str(course_dir), "grade", "--force"],
                          cwd=ROOT, capture_output=True, text=True, preexec_fn=sandbox._install_seccomp,
                          env=fresh_setups(setups), timeout=300)


def test_a_machine_that_cannot_sandbox_stops_before_any_student_with_what_to_do(tmp_path):
    """The grader runs under a filter that refuses namespaces, as some containers do."""
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    samples.write(samples.fill(samples.master_solutions()), course_dir, "student")
    done = _grade_where_namespaces_are_refused(course_dir, tmp_path / "setups")
    assert done.returncode == 2, done.stderr
    assert "the sandbox cannot be set up" in done.stderr and "What to do" in done.stderr
    assert "--unconfined" in done.stderr
    assert not (course_dir / "autograded" / "student").exists()


def test_a_set_up_kept_from_a_machine_that_could_sandbox_still_stops_where_this_one_cannot(tmp_path):
    """Graded once where sandboxes start, the set-up is kept; the next command runs where namespaces are refused
    (moved into a container, say). It stops before any student, as without the kept set-up, and the grade
    already in the gradebook stays as it was, not replaced by a grader error."""
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    samples.write(samples.fill(samples.master_solutions()), course_dir, "student")
    first = subprocess.run([sys.executable, "-m", "grader", "--course-dir", str(course_dir), "grade"], cwd=ROOT,
                           capture_output=True, text=True, env=fresh_setups(tmp_path / "setups"), timeout=300)
    assert first.returncode == 0, first.stderr
    assert batch.stored_result(rnn(course_dir), "student").total == 120
    scores = rnn_scores(course_dir)["student"]
    done = _grade_where_namespaces_are_refused(course_dir, tmp_path / "setups")
    assert "set up as an earlier run did" in done.stderr  # the kept set-up was used...
    assert done.returncode == 2, done.stderr  # ...and the sandbox still checked before any student
    assert "the sandbox cannot be set up" in done.stderr and "--unconfined" in done.stderr
    assert batch.stored_result(rnn(course_dir), "student").total == 120
    assert rnn_scores(course_dir)["student"] == scores and sum(scores.values()) == 120


def test_grading_unconfined_takes_a_flag_and_every_report_says_so(tmp_path, capsys):
    from grader import cli
    course_dir = make_course_copy(tmp_path / "course")
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    samples.write(samples.fill(samples.master_solutions()), course_dir, "student")
    cli.grade_and_report(course_dir, limits=DEMO_LIMITS, confine=False)
    printed = capsys.readouterr()
    assert "graded with --unconfined" in printed.out and "--unconfined" in printed.err
    csv_text = (course_dir / "autograded" / "rnn_step_by_step_grades.csv").read_text()
    assert "UNCONFINED" in csv_text
    assert "graded with --unconfined" in (course_dir / "autograded" / "rnn_step_by_step_report.html").read_text()


def test_an_ordinary_user_is_confined_too_where_the_machine_lets_them_run_python():
    """As uid 65534 (nobody): a user namespace, then the same new root. Skipped where that user
    cannot read this Python (here it lives under /root, which is private)."""
    import sys

    from grader.run import sandbox
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child becomes nobody, then does what the grader's process does
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            if not all(os.access(p, os.R_OK | os.X_OK) for p in sandbox.readable_roots()):
                os.write(write_fd, b"skip")
                os._exit(0)
            mode = sandbox.isolate()
            inner = os.fork()
            if inner == 0:
                sandbox.confine({"a.txt": b"x"}, 8, 8, mode, 0)
                seen = f"{mode} {os.getuid()} {sorted(os.listdir('/'))} {os.path.exists(str(ROOT))}"
                os.write(write_fd, seen.encode())
                os._exit(0)
            os.waitpid(inner, 0)
        except BaseException as error:  # noqa: B902 -- report anything, never return into pytest
            os.write(write_fd, f"error {error}".encode())
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    report = os.read(read_fd, 4096).decode()
    os.close(read_fd)
    if report == "skip":
        pytest.skip(f"uid 65534 cannot read this Python ({sys.base_prefix})")
    assert report.startswith("userns 65534") and "'submission'" in report and report.endswith("False"), report


def test_the_fork_servers_that_start_sandboxes_never_had_the_instructors_environment(attacked):
    """Their children's memory starts as a copy of theirs: the instructor's variables are never in it."""
    servers = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"multiprocessing.forkserver" in (entry / "cmdline").read_bytes():
                servers.append((entry / "environ").read_bytes())
        except OSError:
            continue
    assert servers, "the tests' grading left a fork server running to look at"
    assert os.environ["RNN_KIT_TEST_SECRET"] == INSTRUCTOR_SECRET
    assert not any(INSTRUCTOR_SECRET.encode() in environ for environ in servers)


def test_a_link_in_a_submission_folder_is_not_followed(tmp_path):
    course_dir = make_course_copy(tmp_path / "course")
    folder = course_dir / "submitted" / "linker" / rnn_course.ASSIGNMENT
    samples.write(samples.fill({}), course_dir, "linker")
    (folder / "master.ipynb").symlink_to(course_dir / "source" / rnn_course.ASSIGNMENT / f"{rnn_course.NOTEBOOK}.ipynb")
    (folder / "up").symlink_to(course_dir / "source")
    names = [path for path, _ in batch.read_submission(rnn(course_dir), "linker").files]
    assert names == [f"{rnn_course.NOTEBOOK}.ipynb"]


def test_a_timeout_the_student_process_reports_is_not_caught_by_a_tests_except_exception(tmp_path):
    """Test cells catch a student function's errors (`attempt`) to explain them. A timeout is not an
    error the student's process could catch either: in the replay it passes through `except Exception`,
    so a cell whose function timed out fails as timed out, not as a failed check (which would read as
    tampering)."""
    from grader.core import wire
    from grader.judge import verdict
    source = ("try:\n    value = f(1)\nexcept Exception:\n    value = None\n"
              "assert value is not None, 'the check failed'\n")
    plan = verdict.TestPlan("test_f", source,
                            (calls.Call("f", wire.encode((1,)), wire.encode(2)),))
    for ename, kind in [("CellTimeout", "raised"), ("TimedOutBefore", "raised"), ("ValueError", "checks")]:
        judged = verdict.replay(plan, [{"k": "raised", "ename": ename, "evalue": ""}], [], str(tmp_path))
        assert not judged.passed and judged.kind == kind, (ename, judged)
        assert judged.contradicts_the_notebook == (kind == "checks")
