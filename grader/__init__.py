"""A trusted batch grader for any nbgrader assignment.

It grades a course directory's submissions in parallel, each in a sandbox, with a
verdict the student's code cannot forge, into nbgrader's own gradebook, and publishes
grades, reports and feedback from it. It names no assignment: everything it grades
comes from the course directory (assignments.py). `python -m grader --help` lists
the commands.
"""

import os as _os
import signal as _signal
import sys as _sys


def _interrupted_while_loading(signum, frame):
    # Ctrl-C before the command has started anything: one line, no traceback (the command line puts
    # Python's own handler back once it runs, see cli.main).
    _sys.stderr.write("\nInterrupted before anything started.\n")
    _os._exit(130)


if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _interrupted_while_loading)

# jsonschema (through nbformat) imports the optional `rfc3987_syntax` URI checker when it is installed,
# which builds 38 parsers at import: over a second on every command. The notebook schema has no URI
# fields to check, so the kit goes without it.
_sys.modules.setdefault("rfc3987_syntax", None)
