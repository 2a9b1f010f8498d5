"""Ctrl-C in the grader's commands: the command line's handler, and the critical steps that hold it back.

The command line (cli.main) installs `on_interrupt`; a step that starts or stops processes runs inside `held()`,
so that an interrupt arrives as soon as the step is over, never in its middle; `end_pool` stops a process pool
at once, whatever it was doing.
"""
from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor
    from types import FrameType


class held:
    """Hold Ctrl-C back for a short critical step: starting a process (one interrupted while it starts is
    neither running nor known to its parent, which then cannot stop it), or stopping the workers. The
    interrupt arrives as soon as the block ends.

    Blocking SIGINT in this thread is not enough: the kernel hands the signal to any thread that does not
    block it, and Python then runs the handler in the main thread all the same. So in the main thread the
    command line's handler (on_interrupt) is also told to keep the interrupt until the block ends."""

    def __enter__(self) -> None:
        global _holding
        self.main = threading.current_thread() is threading.main_thread()
        if self.main:
            self.outer, _holding = _holding, True
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        global _holding, _held_back
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        if not self.main:
            return
        _holding = self.outer
        if not _holding and _held_back:
            _held_back = False
            if kind is None:
                raise KeyboardInterrupt


interrupted = False  # set by on_interrupt: Ctrl-C was pressed during this command
_holding = False     # the main thread is inside `held`
_held_back = False   # a Ctrl-C came while it was: raised when the block ends


def on_interrupt(signum: int, frame: FrameType | None) -> None:
    """The command line's SIGINT handler. Python drops an exception raised while a weak reference's
    callback runs, so the flag keeps the interrupt for `check` to raise again."""
    global interrupted, _held_back
    interrupted = True
    if _holding:
        _held_back = True
        return
    raise KeyboardInterrupt


def check() -> None:
    if interrupted:
        raise KeyboardInterrupt


def end_pool(pool: ProcessPoolExecutor) -> None:
    """Stop the workers of `pool` at once and wait for them: after an interrupt, nothing they still do counts."""
    with held():  # a second Ctrl-C must not leave workers behind
        # First this process's end of the pipe the work goes out on (only the workers read it): a submission half
        # written when the workers are killed then fails to send instead of waiting for a reader for ever, and the
        # pool's shutdown with it (later Pythons close it themselves; Debian 12's 3.11.2 hung there).
        queue = getattr(pool, "_call_queue", None)
        if queue is not None:
            queue._reader.close()
        for process in list((pool._processes or {}).values()):
            process.kill()  # only matters when interrupted: finished workers are already idle
        pool.shutdown(wait=True, cancel_futures=True)
