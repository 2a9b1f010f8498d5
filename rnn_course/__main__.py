"""`python -m rnn_course` and the `rnn-grader` command (see pyproject.toml)."""
import sys

from grader.__main__ import run as _run


def run():
    return _run("rnn_course.cli")


if __name__ == "__main__":
    sys.exit(run())
