"""Run a notebook's code cells in a fresh, sandboxed process, within limits.

Stock nbgrader starts a Jupyter kernel per notebook, and most of its time goes to
starting and stopping that kernel. Here a warm fork server (warm.py) has numpy,
IPython and matplotlib imported once; for each submission it forks a process that
isolates itself (sandbox.py) and forks the runner: PID 1 of its own namespaces, in
a new root file system holding the working copy. The runner executes the cells in
a real IPython shell (magics, display, `_`, tracebacks as in Jupyter) and reports
each cell's outputs as soon as the cell ends, so whatever ran before a crash or a
kill is kept. Right after each test cell it also calls the student's functions on
the inputs the outside verdict recorded (verdict.py).

The runner is the student's process: everything it reports is checked here as
untrusted data (wire.py, `clean_outputs`), never unpickled, and size-capped.

Limits, each reported by name:
- a per-cell timeout (an alarm inside the runner raises CellTimeout in the cell);
- a per-notebook budget: the cells together get this much time, after which the
  rest are not run; the process is stopped a little later if it does not stop;
- a memory cap (the runner's address space), and a cap on processes and on disk;
- an output cap (characters of text kept for the whole notebook).
"""
from __future__ import annotations

import io
import os
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# One BLAS thread per child: the parallelism comes from running several children.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import matplotlib  # noqa: E402
import matplotlib.pyplot  # noqa: E402,F401  (imported once here instead of once per child)
import numpy  # noqa: E402,F401
import numpy.random  # noqa: E402,F401  (loaded by numpy on first use: else once per child using np.random)
from IPython.core.displayhook import DisplayHook  # noqa: E402
from IPython.core.displaypub import DisplayPublisher  # noqa: E402
from IPython.core.inputtransformer2 import TransformerManager  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402

from grader.core import interrupts, scratch, wire  # noqa: E402
from grader.core.limits import Limits  # noqa: E402,F401  (part of this module's interface)
from grader.core.plain_text import valid_text  # noqa: E402
from grader.run import memory, sandbox  # noqa: E402
from grader.run.calls import run_calls  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import CodeType

    from grader.run.calls import Call

GRACE_SECONDS = 2.0  # how long past its budget a child may take to stop before it is killed


@dataclass
class Run:
    """What happened when the cells ran."""
    outputs: dict = field(default_factory=dict)  # cell index -> list of nbformat output dicts
    counts: dict = field(default_factory=dict)   # cell index -> execution count
    timed_out: list = field(default_factory=list)  # indexes of cells stopped by the cell timeout
    stopped: str = ""      # why the run ended early ("" when every cell ran)
    stopped_at: int = -1   # index of the first cell that did not finish, when stopped
    truncated: bool = False
    killed: bool = False   # the parent had to kill the child
    seconds: float = 0.0
    calls: dict = field(default_factory=dict)  # test cell index -> wire nodes of the student's outputs
    protocol_error: str = ""  # the process sent something malformed (it was stopped)
    room: list = field(default_factory=lambda: [0, 0])  # characters of text, and of displays, still allowed
    sandbox_error: tuple = ()  # (step, message) when confinement could not be set up
    peak_mb: float = 0.0   # the most memory the sandbox held, as its cgroup or its watch counted it
    out_of_memory: bool = False  # the kernel stopped a process of the sandbox for want of memory
    started_at: float = 0.0    # time.monotonic() when the process was started
    started_seconds: float = 0.0  # from the start until the sandbox reported ready, before the notebook's code
    wire_seconds: float = 0.0  # spent here reading the reports (decoding, cleaning outputs)


class CellTimeout(BaseException):
    """Raised inside a cell that ran past its time. A BaseException, so that a student's
    `except Exception:` does not swallow it."""


class TimedOutBefore(CellTimeout):
    """Raised at once by a notebook function that already ran past the time limit."""


# ---------------------------------------------------------------- inside the child

class _Collector:
    """The current cell's outputs, in order, with the notebook-wide text cap."""

    def __init__(self, chars_left, truncated=False):
        self.items = []
        self.chars_left = chars_left
        self.truncated = truncated  # the cap was reached in an earlier cell
        self.shown = {}             # display id -> the display outputs shown under it (see _Publisher)
        self.clear_next = False     # clear_output(wait=True): clear when the next output comes

    def add(self, item):
        if self.clear_next:
            self.clear()
        self.items.append(item)

    def clear(self):
        self.items.clear()
        self.shown.clear()
        self.clear_next = False

    def stream(self, name, text):
        if not text:
            return
        if self.clear_next:
            self.clear()
        if len(text) > self.chars_left:
            text = text[: max(self.chars_left, 0)]
            if not self.truncated and self.chars_left >= 0:
                self.truncated = True
                text += "\n[output cut here: the autograder keeps only the first part of a notebook's output]\n"
        self.chars_left -= len(text)
        if not text:
            return
        last = self.items[-1] if self.items else None
        if last and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.items.append({"output_type": "stream", "name": name, "text": text})


_current = _Collector(0)


class _Stream(io.TextIOBase):
    def __init__(self, name):
        self.name = name

    def write(self, text):
        _current.stream(self.name, str(text))
        return len(text)

    def writable(self):
        return True

    def isatty(self):
        return False

    @property
    def encoding(self):
        return "utf-8"


def _as_json(data):
    """A display's data as a kernel sends it: bytes (a PIL image's PNG) in base64, and a value JSON cannot hold
    as its text, so that no output can stop the runner."""
    import base64
    import json
    out = {}
    for kind, value in (data or {}).items():
        if isinstance(value, (bytes, bytearray)):
            value = base64.b64encode(bytes(value)).decode("ascii")
        else:
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError, RecursionError):
                value = str(value)[:10_000]
        out[str(kind)] = value
    return out


class _Publisher(DisplayPublisher):
    """Displays as a Jupyter front end keeps them: `update_display` replaces the outputs shown under its
    display id in the cell running, and `clear_output(wait=True)` clears when the next output comes."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        display_id = transient.get("display_id") if isinstance(transient, dict) else None
        data, metadata = _as_json(data), _as_json(metadata)
        if update:
            for item in _current.shown.get(display_id, ()):
                item.update(data=data, metadata=metadata)
            return
        item = {"output_type": "display_data", "data": data, "metadata": metadata}
        _current.add(item)
        if display_id is not None:
            _current.shown.setdefault(display_id, []).append(item)

    def clear_output(self, wait=False):
        if wait:
            _current.clear_next = True
        else:
            _current.clear()


class _Hook(DisplayHook):
    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        _current.add({"output_type": "execute_result", "data": _as_json(format_dict),
                      "metadata": _as_json(md_dict), "execution_count": self.prompt_count})

    def finish_displayhook(self):
        pass


class _Shell(InteractiveShell):
    """IPython's shell, reporting outputs and errors the way a Jupyter kernel does."""
    displayhook_class = _Hook
    display_pub_class = _Publisher

    def _showtraceback(self, etype, evalue, stb):
        _current.add({"output_type": "error", "ename": etype.__name__, "evalue": str(evalue),
                      "traceback": stb})

    def enable_gui(self, gui=None):
        pass  # there is no screen

    def enable_matplotlib(self, gui=None):
        return gui, "module://grader.run.plot_backend"  # `%matplotlib inline` and friends: figures are not drawn

    def should_run_async(self, raw_cell, *, transformed_cell=None, preprocessing_exc_tuple=None):
        # IPython compiles every cell once more to see whether it awaits at its top level: a cell without the
        # words `await` and `async` cannot (keywords are ASCII; other text goes the long way), so its answer is no.
        cell = transformed_cell
        if isinstance(cell, str) and cell.isascii() and "await" not in cell and "async" not in cell:
            return False
        return super().should_run_async(raw_cell, transformed_cell=transformed_cell,
                                        preprocessing_exc_tuple=preprocessing_exc_tuple)


class _RememberingTransforms(TransformerManager):
    """IPython's static transforms of a cell's text (magics, `!` commands, prompts), the same for the same text:
    the fork server works them out for the cells the release hands out (remember_transforms), so that a sandbox
    looks them up instead of tokenizing each of those cells again. A notebook that adds or removes a transform
    (get_ipython().input_transformers_cleanup...) gets every cell transformed afresh, as in IPython."""

    def __init__(self):
        super().__init__()
        self.known = {}
        self.as_made = self._transforms()

    def _transforms(self):
        return (*self.cleanup_transforms, None, *self.line_transforms, None, *self.token_transformers)

    def transform_cell(self, cell):
        known = self.known.get(cell)
        if known is not None and self._transforms() == self.as_made:
            return known
        return super().transform_cell(cell)

    def remember(self, cells):
        for cell in cells:
            try:
                self.known[cell] = super().transform_cell(cell)
            except Exception:  # noqa: BLE001 -- a cell IPython cannot transform is left to the notebook's run
                pass


def remember_transforms(cells: Sequence[str]) -> None:
    """Work out IPython's static transforms of these cells (the release's) once, here in the fork server."""
    manager = _shell().input_transformer_manager
    if isinstance(manager, _RememberingTransforms):
        manager.remember(cells)


def _shell():
    """The shell the children use, made once in the warm parent (without a history thread)."""
    global _current
    if not _Shell.initialized():
        matplotlib.use("module://grader.run.plot_backend")  # in this process only; see plot_backend.py
        config = Config()
        config.HistoryManager.enabled = False
        shell = _Shell.instance(config=config, colors="nocolor")
        shell.input_transformer_manager = _RememberingTransforms()
        # Plain tracebacks (file, line, error) instead of Jupyter's default with context lines:
        # formatting those costs more than running a whole notebook. No score depends on them.
        shell.InteractiveTB.set_mode("Plain")
        # Format one traceback here: the first one loads IPython's traceback machinery
        # (a tenth of a second), which each child would otherwise pay for again.
        _current = _Collector(0)
        shell.run_cell("def _warm_up():\n    raise ValueError('warm-up')\n_warm_up()", store_history=False)
        shell.user_ns.pop("_warm_up", None)
        # Likewise matplotlib's fonts and text layout, loaded by the first figure with text.
        figure = matplotlib.pyplot.figure()
        figure.gca().semilogy([1, 2], [1, 10], label="warm-up")
        figure.gca().legend()
        figure.canvas.draw()
        matplotlib.pyplot.close("all")
    return _Shell.instance()


def warm_up() -> None:
    """Make the shell, and load what its first traceback and first figure load, in this process: a fork
    server calls it once (frozen.py), and every sandbox forked from it finds them ready."""
    _shell()


_stuck: list[tuple[str, CodeType]] = []  # (name, code) of the notebook function each timeout interrupted


def _on_alarm(signum, frame):
    # Remember the innermost function defined in the notebook that was running: it is
    # the one looping, and _quarantine keeps later cells from waiting on it again.
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith("<ipython-input-") and code.co_name != "<module>":
            _stuck.append((code.co_name, code))
            break
        frame = frame.f_back
    raise CellTimeout("the cell ran past its time limit")


def _quarantine(namespace):
    """Replace each function that timed out by one that fails at once.

    An endless loop then costs one cell timeout, not one per cell that calls it, and
    each of those cells fails as it would have under stock nbgrader. A function the
    student defines again later is the new definition, and runs.
    """
    while _stuck:
        name, code = _stuck.pop()
        function = namespace.get(name)
        if getattr(function, "__code__", None) is code:
            def stand_in(*args, _name=name, **kwargs):
                raise TimedOutBefore(f"{_name}() ran past the time limit in an earlier cell, "
                                     "so it is not run again")
            namespace[name] = stand_in


def _send(fd, message):
    data = wire.dumps(message)
    os.write(fd, struct.pack("!I", len(data)))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# Only what the notebook needs: the instructor's environment variables stay outside.
SANDBOX_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": sandbox.TMPDIR, "TMPDIR": sandbox.TMPDIR,
               "LANG": "C.UTF-8", "MPLBACKEND": "module://grader.run.plot_backend", "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NBGRADER_EXECUTION": "autograde"}


def _sandbox_main(conn, status, cells, files, limits, probes, confine, use_user_namespace, cgroup):
    """The process started for one submission (trusted code): isolate, fork the runner, wait for it.

    Runs in a fresh child of the warm fork server, which never held a master notebook,
    a hidden test or a gradebook row, so the runner forked from here holds none either.
    """
    fd, status_fd = conn.fileno(), status.fileno()
    workdir = None
    # If the fork server that started us ends (its grader was interrupted), stop the runner at once.
    sandbox.die_with_parent(signal.SIGTERM)
    charged = False
    if cgroup:  # before the namespaces: from here on, every page this process and its children use is charged
        try:
            memory.join(cgroup)
            charged = True
        except OSError:
            pass
    try:
        mode = sandbox.isolate(use_user_namespace) if confine else None
        if not confine:
            workdir = tempfile.mkdtemp(prefix=scratch.prefix("work"))
            sandbox.write_files(workdir, files)
        sandbox_uid = sandbox.SANDBOX_UID_BASE + os.getpid()
    except sandbox.SandboxError as error:
        _send(status_fd, {"step": error.step, "message": str(error)})
        os._exit(0)
    baseline = memory.anonymous_bytes()  # what the runner holds as it starts: this process's pages, shared
    watch = None if charged else memory.Watch(os.getpid(), limits.memory_mb, baseline)  # the runner's, below
    pid = os.fork()
    if pid == 0:
        try:
            _runner(fd, status_fd, cells, files, limits, probes, mode, workdir, sandbox_uid, charged)
        finally:
            os._exit(70)
    if charged:  # in the sandbox's cgroup too: when it is full, the kernel must stop the runner, not this
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("-1000")
        except OSError:
            pass  # the runner then dies with this process (die_with_parent): the run still stops
    conn.close()
    if watch is None:
        status.close()  # kept by a watch, to report the sandbox's peak at the end
    # Stopped by the grader (SIGTERM) or by its own wall clock, in case the grader is gone: either way
    # the runner is killed and reaped here, so that it never outlives this process.
    signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    signal.setitimer(signal.ITIMER_REAL, limits.notebook_budget + 2 * GRACE_SECONDS)
    # No cgroup charges the sandbox's memory: count it from here, and stop the runner past its limit.
    over, watching = False, watch is not None
    if watch:
        watch.runner = pid
    exited = _exit_notice(pid) if watching else None
    while True:
        done, exit_status = os.waitpid(pid, os.WNOHANG if watching else 0)
        if done:
            break
        if watch.over():
            os.kill(pid, signal.SIGKILL)  # PID 1 of the sandbox's namespace: every process in it goes too
            over, watching = True, False
            continue
        if exited is None:
            time.sleep(memory.WATCH_SECONDS)
        else:  # wakes as soon as the runner ends, not up to a whole interval later (the worker waits on it)
            select.select([exited], [], [], memory.WATCH_SECONDS)
    if exited is not None:
        os.close(exited)
    signal.setitimer(signal.ITIMER_REAL, 0)
    if over and not (os.WIFSIGNALED(exit_status) and os.WTERMSIG(exit_status) == signal.SIGKILL):
        # It was already exiting when the watch looked (a process that exits drops its root, and the watch its
        # view, before the kernel frees its last files): the kill changed nothing, and its own exit stands.
        over = False
    if watch:
        try:  # this process's own word (the runner's copy of the pipe was closed before any student code)
            _send(status.fileno(), {"peak_mb": round(max(watch.peak - baseline, 0) / (1024 * 1024), 1)})
        except OSError:
            pass
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    code = 128 + os.WTERMSIG(exit_status) if os.WIFSIGNALED(exit_status) else os.WEXITSTATUS(exit_status)
    if over:
        code = memory.OUT_OF_MEMORY_EXIT
    elif code == memory.OUT_OF_MEMORY_EXIT:
        code = 1  # the student's own os._exit: the code means the watch alone
    os._exit(code)


def _exit_notice(pid):
    """A descriptor that becomes readable when child `pid` ends (a pidfd), or None where the kernel has none
    (before Linux 5.3): the watch then just sleeps between counts."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _runner(fd, status_fd, cells, files, limits, probes, mode, workdir, sandbox_uid, charged):
    """The sandboxed runner (PID 1 of its own namespace when confined). Never returns.

    Set-up problems go to `status_fd`, which is closed before any student code runs:
    a student's code cannot forge them.
    """
    global _current
    try:
        sandbox.die_with_parent()
        with open("/proc/self/statm") as statm:  # read now: the sandbox may have no /proc
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
        devnull = os.open(os.devnull, os.O_RDWR)
        for stdio in (0, 1, 2):  # C-level writes and reads go nowhere; Python's are captured below
            os.dup2(devnull, stdio)
        if mode:
            try:
                sandbox.confine(files, limits.disk_mb, limits.processes, mode, sandbox_uid, charged)
            except (sandbox.SandboxError, OSError) as error:
                _send(status_fd, {"step": getattr(error, "step", "mount"), "message": str(error)})
                os._exit(0)
            workdir = sandbox.WORKDIR
        os.close(status_fd)
        os.chdir(workdir)
        keep = os.dup(fd)  # the report pipe; every other inherited descriptor is closed
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
        fd = keep
        # The cap counts on top of what the warm parent already maps (numpy, IPython, and
        # on a Dask worker many thread stacks), so it means the same wherever it runs.
        cap = mapped + limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.environ.clear()
        os.environ.update(SANDBOX_ENV)
        tempfile.tempdir = None
        sys.path[:] = [workdir] + [p for p in sys.path if p and os.path.isdir(p)]
        sys.stdout, sys.stderr = _Stream("stdout"), _Stream("stderr")
        signal.signal(signal.SIGALRM, _on_alarm)
        shell = _shell()
        matplotlib.use("module://grader.run.plot_backend")  # again: the parent may have switched since
        chars_left, truncated = limits.output_chars, False
        _send(fd, {"kind": "ready"})  # before any of the notebook's code: the sandbox's own set-up is done
        started = time.monotonic()
        for index, source in cells:
            left = limits.notebook_budget - (time.monotonic() - started)
            if left <= 0:
                _send(fd, {"kind": "budget", "index": index})
                break
            _current = _Collector(chars_left, truncated)
            # Re-armed every second: code that swallows one CellTimeout gets another.
            signal.setitimer(signal.ITIMER_REAL, min(limits.cell_timeout, left), 1.0)
            try:
                shell.run_cell(source, store_history=True)
            except (RecursionError, MemoryError) as error:
                # IPython lets these out of its compile step (a 30,000-term expression): the cell's own error, as a
                # Jupyter kernel reports it, and the notebook goes on.
                _current.items.append({"output_type": "error", "ename": type(error).__name__,
                                       "evalue": str(error)[:500], "traceback": [f"{type(error).__name__}: {error}"]})
            except CellTimeout:
                # Fired in IPython's own code around the cell's: before the cell ran, or as it ended.
                # Either way the cell took its whole time; without an error it would look passed.
                if not any(o["output_type"] == "error" for o in _current.items):
                    _current.items.append({"output_type": "error", "ename": "CellTimeout",
                                           "evalue": "the cell ran past its time limit",
                                           "traceback": ["CellTimeout: the cell ran past its time limit"]})
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            timed_out = any(o["output_type"] == "error" and o["ename"] == "CellTimeout" for o in _current.items)
            _quarantine(shell.user_ns)
            matplotlib.pyplot.close("all")
            chars_left, truncated = _current.chars_left, _current.truncated
            _send(fd, {"kind": "cell", "index": index, "outputs": _current.items,
                       "count": shell.execution_count - 1, "timed_out": timed_out, "truncated": truncated})
            results = _probe(shell, probes[index], limits, left) if index in probes else None
            if results is not None:
                _send(fd, {"kind": "calls", "index": index, "results": results})
        _send(fd, {"kind": "done"})
    except BaseException as error:  # report anything that breaks the runner itself
        try:
            _send(fd, {"kind": "error", "message": f"{type(error).__name__}: {error}"[:500]})
        except BaseException:
            pass
    finally:
        os._exit(0)


def _probe(shell, calls, limits, left):
    """The student's outputs on the recorded inputs of one test cell (see verdict.py)."""
    global _current
    _current = _Collector(0, True)  # what the functions print is not kept
    signal.setitimer(signal.ITIMER_REAL, max(min(limits.cell_timeout, left), 0.1), 1.0)
    try:
        return run_calls(shell.user_ns, calls)
    except CellTimeout:  # between two calls: no outputs, and the test fails as not answered
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _quarantine(shell.user_ns)
        matplotlib.pyplot.close("all")


# ---------------------------------------------------------------- in the parent

# What the grader accepts from one runner. An honest notebook sends a few hundred KB (its outputs are
# capped before they are sent); the caps bound what a forging one can make the grader hold: parsed JSON
# takes more room than its text, so the number of containers and strings per message is capped too.
MAX_MESSAGE = 8 * 1024 * 1024   # bytes in one message from the runner
MAX_TOTAL = 32 * 1024 * 1024    # bytes from one runner in all
MAX_PIECES = 200_000            # JSON objects, arrays and strings in one message


class ProtocolError(Exception):
    """The runner (the student's process) sent something that is not a well-formed report."""


def _read_message(fd, deadline, budget, run):
    """The next message from the child; None at end of file; raises TimeoutError after `deadline`.
    Adds the time decoding took to `run.wire_seconds`."""
    header = _read_exactly(fd, 4, deadline)
    if header is None:
        return None
    size = struct.unpack("!I", header)[0]
    if size > min(MAX_MESSAGE, budget[0]):
        raise ProtocolError(f"a message of {size} bytes, over the cap")
    budget[0] -= size + 4
    body = _read_exactly(fd, size, deadline)
    if body is None:
        raise ProtocolError("a message cut short")
    read_at = time.perf_counter()
    if body.count(b"{") + body.count(b"[") + body.count(b'"') // 2 > MAX_PIECES:
        raise ProtocolError(f"a message of over {MAX_PIECES} values")
    try:
        return wire.loads(body, MAX_MESSAGE)
    except wire.WireError as error:
        raise ProtocolError(str(error)) from None
    finally:
        run.wire_seconds += time.perf_counter() - read_at


def _read_exactly(fd, size, deadline):
    chunks, got = [], 0
    while got < size:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            raise TimeoutError
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _describe_exit(code):
    if code is not None and code > 128:
        number = code - 128
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        return f"the process was killed by {name}"
    return f"the process exited with code {code} (os._exit or a crash in compiled code)"


_OUTPUT_TYPES = {"stream", "error", "display_data", "execute_result"}
INERT_DISPLAYS = {"text/plain", "text/latex", "image/png", "image/jpeg", "image/gif"}
# HTML and Markdown are kept with everything that could run taken out (nbconvert's SanitizeHTML, with the tags
# of tables and text): they would otherwise run in the browser of whoever opens the graded notebook (formgrader,
# with the instructor's rights). SVG and JavaScript are not kept. JSON kinds (a widget's view, application/json)
# are data, kept as they are.
SANITIZED_DISPLAYS = {"text/html", "text/markdown"}
_SAFE_TAGS = ["a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "div", "dl",
              "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "kbd", "li", "ol", "p", "pre", "q",
              "s", "samp", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
              "tr", "tt", "u", "ul", "var"]
_SAFE_ATTRIBUTES = {"*": ["class", "title", "align"], "a": ["href", "title"], "td": ["colspan", "rowspan"],
                    "th": ["colspan", "rowspan", "scope"]}


def _is_json_kind(mimetype):
    return mimetype == "application/json" or mimetype.endswith("+json")


def _sanitized(text):
    from nbconvert.preprocessors.sanitize import SanitizeHTML
    return SanitizeHTML(tags=_SAFE_TAGS, attributes=_SAFE_ATTRIBUTES, strip=True).sanitize_html_tags(text)


def _json_size(value):
    """Characters of `value` as JSON, or None when it is not plain JSON data (or nests too deep)."""
    import json
    try:
        return len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return None


def clean_outputs(outputs: Any, room: list[int]) -> list[dict[str, Any]]:
    """Outputs from the runner, as nbformat output dicts with checked types; raises ProtocolError.

    `room` is [characters of text, characters of display data] still allowed for the whole notebook.
    The runner caps its output itself, but it is the student's process: the cap is kept here too.
    """
    if not isinstance(outputs, list) or len(outputs) > 1000:
        raise ProtocolError("outputs must be a list")
    clean = []
    for output in outputs:
        kind = output.get("output_type") if isinstance(output, dict) else None
        if kind not in _OUTPUT_TYPES:
            raise ProtocolError("an output of an unknown type")
        item = {"output_type": kind}
        if kind == "stream":
            if output.get("name") not in ("stdout", "stderr") or not isinstance(output.get("text"), str):
                raise ProtocolError("a malformed stream output")
            item.update(name=output["name"], text=valid_text(output["text"][:max(room[0], 0)]))
            room[0] -= len(item["text"])
        elif kind == "error":
            trace = output.get("traceback")
            if not (isinstance(output.get("ename"), str) and isinstance(output.get("evalue"), str)
                    and isinstance(trace, list) and all(isinstance(t, str) for t in trace)):
                raise ProtocolError("a malformed error output")
            item.update(ename=valid_text(output["ename"][:200]), evalue=valid_text(output["evalue"][:5000]),
                        traceback=[valid_text(t[:5000]) for t in trace[:200]])
        else:
            data = output.get("data")
            if not isinstance(data, dict) or not all(isinstance(k, str) and (
                    isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
                    or (_is_json_kind(k) and _json_size(v) is not None)) for k, v in data.items()):
                raise ProtocolError("a malformed display output")
            kept = {}
            for k, v in data.items():
                text = v if isinstance(v, str) else "".join(v) if isinstance(v, list) and not _is_json_kind(k) else None
                if k in INERT_DISPLAYS:
                    kept[k] = valid_text(text)  # type: ignore[arg-type]  # an inert kind's value is text, checked above
                elif k in SANITIZED_DISPLAYS:
                    kept[k] = valid_text(_sanitized(text))
                elif _is_json_kind(k):
                    kept[k] = v
            if not kept or set(kept) <= {"text/plain"} and len(data) > len(kept):
                dropped = valid_text(", ".join(sorted(set(data) - set(kept)))[:200])
                kept.setdefault("text/plain", f"[a display of type {dropped}: not kept by the grader]")
            size = sum(len(v) if isinstance(v, str) else _json_size(v) for v in kept.values())
            if size > max(room[1], 0):  # figures share their own allowance, beside the text cap
                kept = {"text/plain": "[display output dropped: over the output cap]"}
            else:
                room[1] -= size
            item.update(data=kept, metadata={})
            if kind == "execute_result":
                count = output.get("execution_count")
                item["execution_count"] = count if type(count) is int else None
        clean.append(item)
    return clean


def _stop(process):
    """Stop the submission's process: it kills and reaps its runner, or is killed itself."""
    process.terminate()
    process.join(GRACE_SECONDS)
    if process.exitcode is None:
        process.kill()


def run_cells(cells: Sequence[tuple[int, str]], files: Mapping[str, bytes], limits: Limits = Limits(),
              probes: Mapping[int, Sequence[Call]] | None = None, confine: bool = True,
              use_user_namespace: bool | None = None, cgroup: str = "") -> Run:
    """Run `cells` (a list of (index, source)) in a fresh process whose working copy holds `files`.

    `probes` maps a cell index to the recorded calls (calls.Call) to make right after
    that cell. With `confine`, the process is sandboxed (see sandbox.py). `cgroup` is the
    batch's memory cgroup (memory.py), "" where there is none. Returns a Run.
    """
    import multiprocessing

    from grader.run import warm

    run = Run()
    run.room = [limits.output_chars + 1000, 4_000_000]  # the runner's own cut-off note fits
    probes = probes or {}
    context = warm.context()
    # Dask runs its workers as daemonic processes, which multiprocessing forbids to start children.
    # The sandbox's process is waited for right here, so the rule (about orphans) does not apply.
    if multiprocessing.current_process().daemon:
        multiprocessing.current_process().daemon = False
    reader, writer = context.Pipe(duplex=False)
    status_reader, status_writer = context.Pipe(duplex=False)
    started = run.started_at = time.monotonic()
    charged_to = memory.make_sandbox_cgroup(cgroup, memory.share_mb(limits, charged=True))
    process = context.Process(target=_sandbox_main, daemon=False,
                              args=(writer, status_writer, cells, files, limits, probes, confine,
                                    use_user_namespace, charged_to))
    with interrupts.held():
        process.start()
    writer.close()
    status_writer.close()
    fd = reader.fileno()
    deadline = started + limits.notebook_budget + GRACE_SECONDS
    pending = [index for index, _ in cells]
    budget = [MAX_TOTAL]
    try:
        while True:
            try:
                message = _read_message(fd, deadline, budget, run)
            except TimeoutError:
                _stop(process)
                run.killed = True
                run.stopped = (f"the notebook ran past its time budget of {limits.notebook_budget:g} s "
                               "and its process was stopped")
                break
            except ProtocolError as error:
                _stop(process)
                run.killed = True
                run.stopped = run.protocol_error = f"the notebook's process sent malformed data ({error})"
                break
            if message is None:
                break
            try:
                read_at = time.perf_counter()
                if _take(run, message, pending, limits, probes):
                    break
                run.wire_seconds += time.perf_counter() - read_at
            except (ProtocolError, KeyError, TypeError, ValueError) as error:
                _stop(process)
                run.killed = True
                run.stopped = run.protocol_error = f"the notebook's process sent malformed data ({error})"
                break
    except BaseException:
        _stop(process)  # interrupted (Ctrl-C): the sandbox ends now, not when its notebook next reports
        raise
    finally:
        reader.close()
        process.join()
    try:  # written only by the grader's own code, before the student's code starts
        if status_reader.poll(0):
            problem = wire.loads(status_reader.recv_bytes(65536), 65536)
            if set(problem) == {"peak_mb"}:  # a watched sandbox's peak, from its own parent
                run.peak_mb = float(problem["peak_mb"])
            else:
                run.sandbox_error = (str(problem.get("step")), str(problem.get("message")))
                run.stopped = f"the sandbox could not be set up ({run.sandbox_error[1]})"
    except (EOFError, OSError, wire.WireError):
        pass
    finally:
        status_reader.close()
    if charged_to:
        peak, kills = memory.usage(charged_to)
        memory.remove(charged_to)
        run.peak_mb = round(peak / (1024 * 1024), 1)
        run.out_of_memory = kills > 0
        if kills and pending:  # the runner itself was stopped (a process it started is the cell's business)
            run.stopped = run.stopped or (f"the notebook ran out of memory (it may hold "
                                          f"{memory.share_mb(limits, charged=True)} MB) and was stopped")
    elif process.exitcode == memory.OUT_OF_MEMORY_EXIT:
        run.out_of_memory = True
        if pending:
            run.stopped = run.stopped or (f"the notebook ran out of memory (it may hold {limits.memory_mb} MB "
                                          "beyond what it starts with) and was stopped")
    if pending and not run.stopped:
        run.stopped = _describe_exit(process.exitcode)
    if run.stopped:
        run.stopped_at = pending[0] if pending else -1
    run.seconds = time.monotonic() - started
    return run


def _take(run, message, pending, limits, probes):
    """Apply one message to `run`; True when it ends the run. Only what the grader asked for is taken:
    each cell's report once and in order, and each test's outputs once, after its cell, one per call."""
    kind = message.get("kind")
    if kind == "ready":
        if run.started_seconds or run.outputs or run.calls:
            raise ProtocolError("a second report that the sandbox is ready")
        run.started_seconds = max(time.monotonic() - run.started_at, 1e-6)
    elif kind == "cell":
        index = message["index"]
        if type(index) is not int or not pending or index != pending[0]:
            raise ProtocolError("a report for a cell that is not the next to run")
        run.outputs[index] = clean_outputs(message["outputs"], run.room)
        count = message.get("count")
        run.counts[index] = count if type(count) is int else None
        pending.remove(index)
        if message.get("timed_out") is True:
            run.timed_out.append(index)
        run.truncated |= message.get("truncated") is True
    elif kind == "calls":
        index, results = message["index"], message["results"]
        if type(index) is not int or index not in probes or index in pending or index in run.calls:
            raise ProtocolError("a report of outputs the grader did not ask for")
        if not isinstance(results, list) or len(results) != len(probes[index]):
            raise ProtocolError("a report of a test's outputs with another number of outputs than calls")
        run.calls[index] = results
    elif kind == "budget":
        run.stopped = f"the notebook used up its time budget of {limits.notebook_budget:g} s"
        return True
    elif kind == "error":
        run.stopped = f"the grader's runner failed: {valid_text(str(message.get('message', ''))[:500])}"
        return True
    elif kind == "done":
        return True
    else:
        raise ProtocolError("a message of an unknown kind")
    return False
