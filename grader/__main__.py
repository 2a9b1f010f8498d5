"""`python -m grader` and the `rnn-grader` command (see pyproject.toml)."""
import sys


def run():
    try:
        from .cli import main
    except KeyboardInterrupt:  # Ctrl-C while the kit is still loading: nothing has started yet
        print("\nInterrupted before anything started.", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
