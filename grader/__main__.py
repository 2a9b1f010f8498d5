"""`python -m grader`: the engine's command line (a course's own command starts the same way)."""
import importlib
import signal
import sys


def deaf_if_spawned(name):
    """Called first by a command's main module with its `__name__`. A process the command starts with
    multiprocessing's spawn (the master's recording) runs that module first, as "__mp_main__": there, Ctrl-C
    is ignored from then on. It is the command's to answer (it stops that process), not one more traceback."""
    if name == "__mp_main__":
        signal.signal(signal.SIGINT, signal.SIG_IGN)


deaf_if_spawned(__name__)


def run(cli="grader.cli"):
    try:
        main = importlib.import_module(cli).main
    except KeyboardInterrupt:  # Ctrl-C while the kit is still loading: nothing has started yet
        print("\nInterrupted before anything started.", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
