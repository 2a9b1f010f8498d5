"""`python -m grader`: the engine's command line, with the measuring tools' commands (grader_eval.commands); a
course's own command starts the same way. The one module of the engine that imports grader_eval."""
from __future__ import annotations

import atexit
import importlib
import os
import signal
import sys
from types import FrameType


def _interrupted_while_loading(signum: int, frame: FrameType | None) -> None:
    # Ctrl-C before the command has started anything: one line, no traceback (the command line puts
    # its own handler in once it runs, see cli.main).
    sys.stderr.write("\nInterrupted before anything started.\n")
    os._exit(130)


if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_loading)


def _end_as_interrupted(outcome: list[int]) -> None:
    # CPython ends a process whose Ctrl-C landed in code that a C extension ran while it was imported (a
    # PyRun_* call) by SIGINT, after its clean-up, even though the command caught the KeyboardInterrupt and
    # said so: seen as exit -2 instead of 130 about once in ten interrupts during the imports, on a busy
    # machine. Registered first, this runs after every other clean-up registered with atexit (multiprocessing's
    # included): the process then ends with the status the command returned.
    if outcome == [130]:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


def run(cli: str = "grader.cli") -> int:
    """The program's entry point (`python -m grader`, `rnn-grader`): the command's exit status. An interrupted
    command ends the process with 130 at exit (_end_as_interrupted), so call it only as a program's main."""
    outcome: list[int] = []
    atexit.register(_end_as_interrupted, outcome)
    try:
        main = importlib.import_module(cli).main
        tools = importlib.import_module("grader_eval.commands").COMMANDS if cli == "grader.cli" else ()
    except KeyboardInterrupt:  # Ctrl-C while the kit is still loading: nothing has started yet
        print("\nInterrupted before anything started.", file=sys.stderr)
        outcome.append(130)
        return 130
    try:
        outcome.append(main(tools=tools) if tools else main())
    except KeyboardInterrupt:  # pressed as the command returned, after its own handling of Ctrl-C had ended
        print("\nInterrupted.", file=sys.stderr)
        outcome.append(130)
    # The command is over, its outcome said: a Ctrl-C from here on changes nothing. Left to its handler, it would
    # raise in Python's own clean-up, which then ends the process by SIGINT (exit -2) instead of with this status.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return outcome[0]


if __name__ == "__main__":
    sys.exit(run())
