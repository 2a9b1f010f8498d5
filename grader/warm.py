"""The local pool's process context, started early.

Its server process imports numpy, IPython, matplotlib and nbgrader once, in the
background while the command is still starting; each pool worker is then forked
from it, already warm, and each submission's process is forked from a worker.
This module imports nothing heavy, so calling it first costs nothing.
"""
import multiprocessing


def context():
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["grader.execute", "grader.grading"])
    forkserver.ensure_running()
    return ctx
