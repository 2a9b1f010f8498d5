"""`python -m grader`: the engine's command line (a course's own command starts the same way)."""
import importlib
import sys


def run(cli="grader.cli"):
    try:
        main = importlib.import_module(cli).main
    except KeyboardInterrupt:  # Ctrl-C while the kit is still loading: nothing has started yet
        print("\nInterrupted before anything started.", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
