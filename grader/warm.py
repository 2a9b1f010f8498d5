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
import multiprocessing
import os

# What the fork server may inherit of the environment: where things are, and the locale.
_KEPT = {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
         "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VIRTUAL_ENV"}


def context():
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["grader.execute", "grader.grading"])
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update({k: v for k, v in saved.items() if k in _KEPT or k.startswith("LC_")})
        forkserver.ensure_running()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return ctx
