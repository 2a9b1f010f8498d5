"""The fork server: warm processes, started early, that never hold anything secret.

Its server process imports numpy, IPython, matplotlib and nbgrader once, in the
background while the command is still starting. Pool workers are forked from it,
already warm; each submission's sandboxed process is forked from a fork server
too (the main process's, or on a pool or Dask worker that worker's own). A fork
server only ever imports modules: it never sees a master notebook, a hidden test,
a gradebook row or the instructor's environment variables, so neither can the
student code that runs in its children.
This module imports nothing heavy, so calling it first costs nothing.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
from typing import TYPE_CHECKING

from grader.core import scratch

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from multiprocessing.context import ForkServerContext

# What the fork server may inherit of the environment: where things are, and the locale.
_KEPT = {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
         "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VIRTUAL_ENV"}


WARM_MODULES = "TRUSTED_GRADER_WARM_MODULES"  # how a fork server is told the extra modules to import (frozen.py)
WARM_CELLS = "TRUSTED_GRADER_WARM_CELLS"      # ... and the release's code cells, whose IPython transforms it keeps
_WARM_CELLS_MAX = 100_000  # characters of JSON: an environment variable holds at most 128 KB
# Never imported ahead: they do something when imported (open a browser, a window, print), or are no module.
_NEVER_AHEAD = {"__future__", "this", "antigravity", "turtle", "tkinter", "idlelib", "webbrowser", "pip",
                "setuptools", "IPython", "ipykernel", "grader"}


def context(quiet: bool = False, modules: Sequence[str] = (), preload: Sequence[str] = (),
            cells: Sequence[str] = ()) -> ForkServerContext:
    """The fork server's context, started if need be. `quiet`: the server and its children write
    nothing to the terminal (for pool workers, whose sandboxes report through their own pipes, and
    which are killed mid-start when the run is interrupted). `modules`: more modules for a server started
    here to import ahead (see modules_imported), so that each sandbox finds them loaded. `preload`: the engine's
    own modules that the caller's children run (the grading unit, for a batch's pool), imported by the server
    once, as the sandbox's runner is. `cells`: the code cells the release hands out, for a server started here to
    work out IPython's transforms of ahead (execute.remember_transforms); left out when there are too many."""
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["grader.run.execute", *preload, "grader.run.frozen"])
    _socket_folder()
    saved = dict(os.environ)
    # Started with Ctrl-C ignored, which it and every process forked from it inherit: an interrupt is the
    # grader's to handle (it stops the workers and says so in one line), not theirs to print tracebacks for.
    # Blocked meanwhile in this thread: Linux keeps a blocked signal pending even while it is ignored, so a Ctrl-C
    # pressed as the server starts reaches the grader's handler once it is back, instead of being dropped (the
    # server inherits the blocked mask too, and lifts it: frozen.py).
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.environ.clear()
        os.environ.update({k: v for k, v in saved.items() if k in _KEPT or k.startswith("LC_")})
        if modules:
            os.environ[WARM_MODULES] = ",".join(modules)
        if cells and len(listed := json.dumps(list(cells))) <= _WARM_CELLS_MAX:
            os.environ[WARM_CELLS] = listed
        if quiet:
            with _stderr_to_devnull():
                forkserver.ensure_running()
        else:
            forkserver.ensure_running()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if in_main:
            signal.signal(signal.SIGINT, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return ctx


# A Unix socket's path holds at most 107 bytes. multiprocessing binds each fork server's socket ("listener-" and 8
# characters) in a folder of the process that starts it; the kit makes that folder (a scratch folder, holding
# multiprocessing's own "pymp-" one) in the temporary folder when its path is at most this long, else in /tmp:
SOCKET_FOLDER_FALLBACK = scratch.ALSO_SWEPT
_TEMP_FOLDER_MAX = 107 - len(f"/{scratch.SCRATCH}mp-4194304-12345678/pymp-12345678/listener-12345678")


_socket_folder_of = 0  # the process that made its socket folder (a forked child inherits the value, not the work)


def _socket_folder() -> None:
    """Where this process's fork server sockets go: inside a scratch folder of the kit's, so that a grader killed
    with SIGKILL (which leaves multiprocessing no time to remove its folder) has it removed by the next run
    (scratch.sweep_scratch), and in /tmp when the temporary folder's path is too long to bind a socket under it
    ("AF_UNIX path too long"). A process forked from this one inherits the folder; made once per process."""
    import shutil
    import tempfile
    from multiprocessing import util

    global _socket_folder_of
    if _socket_folder_of == os.getpid():
        return
    _socket_folder_of = os.getpid()
    base = tempfile.gettempdir()
    if len(os.fsencode(base)) > _TEMP_FOLDER_MAX and os.access(SOCKET_FOLDER_FALLBACK, os.W_OK | os.X_OK):
        base = SOCKET_FOLDER_FALLBACK
    own = tempfile.mkdtemp(prefix=scratch.prefix("mp"), dir=base)
    saved, tempfile.tempdir = tempfile.tempdir, own
    try:
        made = util.get_temp_dir()  # multiprocessing's folder, made now inside ours unless it already had one
    finally:
        tempfile.tempdir = saved
    if os.path.dirname(made) != own:
        os.rmdir(own)
        return
    # Removed at exit after multiprocessing removes its own folder inside it (its finalizer has priority -100).
    util.Finalize(None, shutil.rmtree, args=(own,), kwargs={"ignore_errors": True}, exitpriority=-101)


def modules_imported(sources: Iterable[str]) -> tuple[str, ...]:
    """The environment's modules that the module level of these code cells imports (pandas,
    sklearn.model_selection, ...), for a fork server to import ahead: the notebooks as handed out import them
    in every submission, and each sandbox would otherwise load them again. Only modules of the environment
    (the standard library, site-packages), never a course's file, and never one that acts when imported."""
    import ast
    import importlib.util

    names = []
    for source in sources:
        text = "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
    found = []
    for name in dict.fromkeys(names):
        top = name.split(".")[0]
        if top in _NEVER_AHEAD or not all(part.isidentifier() for part in name.split(".")):
            continue
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            continue
        origin = str(spec.origin) if spec is not None else ""
        if origin in ("built-in", "frozen") or origin.startswith(_stdlib()) \
                or any(f"{os.sep}{folder}{os.sep}" in origin for folder in ("site-packages", "dist-packages")):
            found.append(name)
    return tuple(found)


def _stdlib() -> str:
    import sysconfig
    return sysconfig.get_paths()["stdlib"]


class _stderr_to_devnull:
    """File descriptor 2 on /dev/null for the block: what a process started in it inherits."""

    def __enter__(self):
        self.saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
