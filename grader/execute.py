"""Run a notebook's code cells in a fresh child process, within limits.

Stock nbgrader starts a Jupyter kernel per notebook, and most of its time goes to
starting and stopping that kernel. Here the process that grades (a pool or Dask
worker) imports numpy, IPython and matplotlib once, then forks one child per
submission. The child runs the cells in a real IPython shell (magics, display,
`_`, tracebacks as in Jupyter) and sends each cell's outputs back as soon as the
cell ends, so whatever ran before a crash or a kill is kept.

Limits, each reported by name:
- a per-cell timeout (an alarm inside the child raises CellTimeout in the cell);
- a per-notebook budget: the cells together get this much time, after which the
  rest are not run; the parent kills the child a little later if it does not stop;
- a memory cap (the child's address space);
- an output cap (characters of text kept for the whole notebook).
"""
import ctypes
import io
import os
import pickle
import resource
import select
import signal
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field

# One BLAS thread per child: the parallelism comes from running several children.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import matplotlib  # noqa: E402
import matplotlib.pyplot  # noqa: E402,F401  (imported once here instead of once per child)
import numpy  # noqa: E402,F401
from IPython.core.displayhook import DisplayHook  # noqa: E402
from IPython.core.displaypub import DisplayPublisher  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402

GRACE_SECONDS = 2.0  # how long past its budget a child may take to stop before it is killed


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 30.0    # seconds a single cell may run
    notebook_budget: float = 60.0  # seconds all cells of one notebook may run together
    memory_mb: int = 2048         # memory the child may map beyond what its warm parent maps
    output_chars: int = 100_000   # stdout/stderr characters kept for the whole notebook


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

    def stream(self, name, text):
        if not text:
            return
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


class _Publisher(DisplayPublisher):
    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        _current.items.append({"output_type": "display_data", "data": data, "metadata": metadata or {}})

    def clear_output(self, wait=False):
        _current.items.clear()


class _Hook(DisplayHook):
    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        _current.items.append({"output_type": "execute_result", "data": format_dict,
                               "metadata": md_dict or {}, "execution_count": self.prompt_count})

    def finish_displayhook(self):
        pass


class _Shell(InteractiveShell):
    """IPython's shell, reporting outputs and errors the way a Jupyter kernel does."""
    displayhook_class = _Hook
    display_pub_class = _Publisher

    def _showtraceback(self, etype, evalue, stb):
        _current.items.append({"output_type": "error", "ename": etype.__name__, "evalue": str(evalue),
                               "traceback": stb})

    def enable_gui(self, gui=None):
        pass  # there is no screen

    def enable_matplotlib(self, gui=None):
        return gui, "module://grader.plot_backend"  # `%matplotlib inline` and friends: figures are not drawn


def _shell():
    """The shell the children use, made once in the warm parent (without a history thread)."""
    global _current
    if not _Shell.initialized():
        matplotlib.use("module://grader.plot_backend")  # in this process only; see plot_backend.py
        config = Config()
        config.HistoryManager.enabled = False
        shell = _Shell.instance(config=config, colors="nocolor")
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


_shell()


_stuck = []  # (name, code) of the notebook function each timeout interrupted


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
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    os.write(fd, struct.pack("!I", len(data)))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _child(fd, cells, workdir, limits):
    """Runs in the forked child: executes `cells` and reports each one on `fd`. Never returns."""
    global _current
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the worker that started us
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # The cap counts on top of what the warm parent already maps (numpy, IPython, and
        # on a Dask worker many thread stacks), so it means the same wherever it runs.
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
        cap = mapped + limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        devnull = os.open(os.devnull, os.O_RDWR)
        for stdio in (0, 1, 2):  # C-level writes and reads go nowhere; Python's are captured below
            os.dup2(devnull, stdio)
        os.chdir(workdir)
        sys.path.insert(0, workdir)
        os.environ["NBGRADER_EXECUTION"] = "autograde"  # as stock nbgrader sets it
        sys.stdout, sys.stderr = _Stream("stdout"), _Stream("stderr")
        signal.signal(signal.SIGALRM, _on_alarm)
        shell = _shell()
        matplotlib.use("module://grader.plot_backend")  # again: the parent may have switched since
        chars_left, truncated = limits.output_chars, False
        started = time.monotonic()
        for index, source in cells:
            left = limits.notebook_budget - (time.monotonic() - started)
            if left <= 0:
                _send(fd, ("budget", index))
                break
            _current = _Collector(chars_left, truncated)
            # Re-armed every second: code that swallows one CellTimeout gets another.
            signal.setitimer(signal.ITIMER_REAL, min(limits.cell_timeout, left), 1.0)
            try:
                shell.run_cell(source, store_history=True)
            except CellTimeout:  # fired outside the user's code, after it finished
                pass
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            timed_out = any(o["output_type"] == "error" and o["ename"] == "CellTimeout" for o in _current.items)
            _quarantine(shell.user_ns)
            matplotlib.pyplot.close("all")
            chars_left, truncated = _current.chars_left, _current.truncated
            _send(fd, ("cell", index, _current.items, shell.execution_count - 1, timed_out, truncated))
        _send(fd, ("done",))
    except BaseException as error:  # report anything that breaks the runner itself
        try:
            _send(fd, ("error", f"{type(error).__name__}: {error}"))
        except BaseException:
            pass
    finally:
        os._exit(0)


# ---------------------------------------------------------------- in the parent

def _read_message(fd, deadline):
    """The next message from the child; None at end of file; raises TimeoutError after `deadline`."""
    header = _read_exactly(fd, 4, deadline)
    if header is None:
        return None
    body = _read_exactly(fd, struct.unpack("!I", header)[0], deadline)
    return None if body is None else pickle.loads(body)


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


def _describe_exit(status):
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        return f"the process was killed by {name}"
    return f"the process exited with code {os.WEXITSTATUS(status)} (os._exit or a crash in compiled code)"


def run_cells(cells, workdir, limits=Limits()):
    """Run `cells` (a list of (index, source)) in a fresh child process in `workdir`; return a Run."""
    run = Run()
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(write_fd, cells, str(workdir), limits)
    os.close(write_fd)
    deadline = started + limits.notebook_budget + GRACE_SECONDS
    pending = [index for index, _ in cells]
    killed = False
    try:
        while True:
            try:
                message = _read_message(read_fd, deadline)
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                killed = True
                run.stopped = (f"the notebook ran past its time budget of {limits.notebook_budget:g} s "
                               "and its process was stopped")
                break
            if message is None:
                break
            kind = message[0]
            if kind == "cell":
                _, index, outputs, count, timed_out, truncated = message
                run.outputs[index], run.counts[index] = outputs, count
                pending.remove(index)
                if timed_out:
                    run.timed_out.append(index)
                run.truncated |= truncated
            elif kind == "budget":
                run.stopped = f"the notebook used up its time budget of {limits.notebook_budget:g} s"
                break
            elif kind == "error":
                run.stopped = f"the grader's runner failed: {message[1]}"
                break
            elif kind == "done":
                break
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    if pending and not run.stopped:
        run.stopped = _describe_exit(status)
    if run.stopped:
        run.stopped_at = pending[0] if pending else -1
    run.killed = killed
    run.seconds = time.monotonic() - started
    return run


def scratch_dir():
    """A private folder for one submission's working copy."""
    return tempfile.mkdtemp(prefix="rnn-grade-")
