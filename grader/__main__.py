"""`python -m grader`: the engine's command line, with the measuring tools' commands (grader_eval.commands); a
course's own command starts the same way. The one module of the engine that imports grader_eval."""
from __future__ import annotations

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


def run(cli: str = "grader.cli") -> int:
    try:
        main = importlib.import_module(cli).main
        tools = importlib.import_module("grader_eval.commands").COMMANDS if cli == "grader.cli" else ()
    except KeyboardInterrupt:  # Ctrl-C while the kit is still loading: nothing has started yet
        print("\nInterrupted before anything started.", file=sys.stderr)
        return 130
    return main(tools=tools) if tools else main()


if __name__ == "__main__":
    sys.exit(run())
