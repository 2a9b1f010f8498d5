"""A trusted batch grader for any nbgrader assignment.

It grades a course directory's submissions in parallel, each in a sandbox, with a verdict the student's code
cannot forge, into nbgrader's own gradebook, and publishes grades, reports and feedback from it. It names no
assignment: everything it grades comes from the course directory. `python -m grader --help` lists the commands.

A package per stage, in the order a grade is made; each imports only some of the packages before it in this
list, and its own docstring names which (tests/test_layout.py, MAY_IMPORT, keeps it so):

    core        errors, limits, the data a grade is made of, notebooks, text, the wire; imports nothing else
    course      the course directory: nbgrader's config and API, assignments, release, gradebook
    collect     1. submissions and hand grades brought in (LMS downloads, archives, CSVs)
    run         2. a notebook's cells run in a sandbox
    judge       3. one submission graded: sanitised, run, judged outside the student's process
    grade       4. a class graded in parallel (local pool or Dask), each result recorded once
    report      5. grades CSVs, class report and feedback pages, from the gradebook
    similarity  beside them: the copy report, for the instructor alone
    app         use cases across the stages: grade then publish, the copy report, removing students

On top: the command line (cli and __main__ parse and run; terminal says what happened, the one module that
prints to the terminal) and nbgrader's hook (nbgrader_engine: the lines of the course's config that name the
kit's exporters; nbgrader_exporters: `nbgrader autograde` through the kit, in a process of its own that nbgrader
starts: `python -m grader.nbgrader_exporters`). The measuring tools (stock
nbgrader, the benchmark, conformance) are the package grader_eval, outside.
"""

import sys as _sys

# jsonschema (through nbformat) imports the optional `rfc3987_syntax` URI checker when it is installed,
# which builds 38 parsers at import: over a second on every command. The notebook schema has no URI
# fields to check, so the kit goes without it.
_sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None blocks an import (documented)


def _nbgrader_without_its_server_extensions():
    """Register the nbgrader package without running its __init__.py, which imports the Jupyter server extensions
    (jupyter_server, tornado's web handlers, nbconvert, SQLAlchemy) that no grading process serves: half a second
    of CPU at the start of every grader command and every fork server. Its modules import as usual; a process
    that imported nbgrader before the kit (nbgrader's own commands, Jupyter's server) keeps the whole package."""
    import importlib.util

    if "nbgrader" in _sys.modules:
        return
    spec = importlib.util.find_spec("nbgrader")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed: the first import of it says so
    _sys.modules["nbgrader"] = package = importlib.util.module_from_spec(spec)
    from nbgrader._version import __version__  # read by nbgrader's apps
    package.__version__ = __version__


_nbgrader_without_its_server_extensions()
