"""The outside verdict: a test cell's checks run in the grader's process, on the student's outputs.

A test cell calls the student's functions and checks what they return. Run inside
the student's process, those checks can be fooled (numpy patched, builtins replaced,
IPython hooks, objects equal to anything...). So every test cell is also judged here:

1. `record` (once per batch): the whole master test cell, hidden tests included, runs
   in a trusted namespace where each student function is a stand-in calling the
   master's solution. Every call it makes is recorded: which function, which inputs.
2. The sandbox runs the student's notebook, with the test cells as students see them
   (no hidden tests: that code never enters the student's process). Right after each
   test cell, it calls the student's functions on the recorded inputs and sends back
   the outputs, as plain data (see wire.py).
3. `replay` (per submission): the whole master test cell runs again here, where each
   call to a student function returns, in order, what the student's function returned
   for those inputs. The asserts, numpy and the provided helpers are the grader's own.

The cell passes only if it passed in the student's process and here. If it passed
there but its visible checks fail here on the same outputs, before any of its hidden
code ran, something in the student's process changed what the test saw: `tampering
suspected`. Where in the cell a failure happened is read from its traceback (see
hidden.py for which lines are hidden).

A test cell may also read values the student's cells define (`answer = 42`): the
sandbox sends them back as plain data after the cell, and the replay gives the test
those copies. The notebook's own imports (in its cells that are not tests) run first,
in the grader, so a test may use what they import. A cell ending in an expression that gives a number on the
master's answers is a partial credit: the replay computes its value, which is the score (never the value the
student's process displayed; see `credit_of`).

Nothing here is specific to an assignment: a test cell qualifies if it calls the
student's functions with positional arguments, the inputs it gives them do not
depend on what those functions returned (the recording and the replay would then
differ, and the replay says so and fails), and it reads nothing else of the notebook
than those functions and values. `record` says which cells do not qualify and why;
they are judged inside the sandbox only. The canary proves the rest for every cell.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import decimal
import functools
import io
import math
import numbers
import os
import signal
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grader.core import hidden, interrupts, wire
from grader.core.files import write_atomically
from grader.core.notebook import is_solution_cell, nbgrader_meta
from grader.core.plain_text import valid_text
from grader.run import sandbox, warm
from grader.run.calls import Call, without

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from nbformat import NotebookNode

    from grader.core.model import MasterCell

    # What `record_apart` records for one notebook: (test cells, master cells, files, hidden markers).
    MasterNotebook = tuple[Sequence[MasterCell], Sequence[NotebookNode], Iterable[tuple[str, bytes]], tuple[str, str]]
    # What `record` gives for one notebook: (plans, inside, problems).
    Recorded = tuple[dict[str, "TestPlan"], dict[str, str], list[str]]


@dataclass(frozen=True)
class TestPlan:
    """One test cell, as the outside verdict runs it."""
    grade_id: str
    source: str      # the master's test cell, hidden tests included
    calls: tuple     # Call: first the names the test reads (values), then the calls in the order the master made them
    partial_credit: bool = False  # the cell ends in an expression whose value, on the master's answers, is a
    #                               number: nbgrader reads a score from it
    imports: str = ""  # the notebook's own imports (its non-test cells'), run first: the test may use them
    functions: tuple = ()  # the student's functions the test is given (stand-ins), called or not
    markers: tuple = hidden.DEFAULT  # the course's hidden-test delimiters

    @functools.cached_property
    def hidden(self) -> hidden.HiddenLines:
        """Where the cell's hidden code is."""
        return hidden.hidden_lines(self.source, self.markers)


def notebook_imports(master_cells: Iterable[NotebookNode]) -> str:
    """The import statements at the top level of the master's cells that are not tests, as code."""
    lines = []
    for cell in master_cells:
        meta = nbgrader_meta(cell)
        if cell.get("cell_type") != "code" or (meta.get("grade") and not meta.get("solution")):
            continue
        try:
            tree = ast.parse(as_python(cell.source))
        except SyntaxError:
            continue  # not Python even with its magics read as IPython reads them: nothing to import from it
        lines += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(dict.fromkeys(lines))


def as_python(source: str) -> str:
    """A cell's source as the Python IPython runs: magics (`%matplotlib inline`) and shell escapes (`!ls`)
    become calls on `get_ipython()`, so the Python around them still runs."""
    from IPython.core.inputtransformer2 import TransformerManager
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 -- IPython's transformers on text they do not expect: read it as it is
        return source


def _master_shell():
    """A fresh IPython shell for one master notebook's cells, in the recording's own process: magics and displays
    behave as in Jupyter (a display handle, `%%time`), except that nothing is drawn or shown, and shell escapes
    (`!pip ...`) do nothing: the master's plots and commands are no part of its answers."""
    import matplotlib
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    shell_class = _master_shell_class()
    shell_class.clear_instance()  # each notebook starts from an empty namespace, as in a kernel of its own
    InteractiveShell.clear_instance()  # and the fork server's own shell (execute.py), which IPython allows once
    matplotlib.use("agg")
    config = Config()
    config.HistoryManager.enabled = False
    return shell_class.instance(config=config)


@functools.cache
def _master_shell_class():
    from IPython.core.interactiveshell import InteractiveShell

    class MasterShell(InteractiveShell):
        def enable_gui(self, gui=None):
            pass

        def enable_matplotlib(self, gui=None):
            return "agg", "agg"

        def system(self, cmd):
            pass

        def getoutput(self, cmd, split=True, depth=0):
            return []

    return MasterShell


def ends_in_expression(source: str) -> bool:
    """True when the cell's last statement is an expression, which nbgrader reads as partial credit."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and isinstance(body[-1], ast.Expr)


class ReplayMismatch(Exception):
    """The replayed test made a call the recording did not (its inputs depend on the outputs)."""


class ReplayTimeout(BaseException):
    """The grader's own run of a test took too long on the student's outputs."""


class StudentRaised(Exception):
    """Stands for the exception the student's function raised when the sandbox called it."""

    def __init__(self, ename: str, evalue: str) -> None:
        super().__init__(f"{ename}: {evalue}" if evalue else ename)
        self.ename, self.evalue = ename, evalue


class StudentRaisedBase(BaseException):
    """Stands for a BaseException the student's function raised (a timeout, SystemExit...): like the
    original, it passes through a test's `except Exception`, so the replay fails where the notebook did."""

    def __init__(self, ename: str, evalue: str) -> None:
        super().__init__(f"{ename}: {evalue}" if evalue else ename)
        self.ename, self.evalue = ename, evalue


# What the sandbox raises or Python raises outside the Exception hierarchy (execute.CellTimeout and
# its subclass included). A student can only name these to make their own test fail.
BASE_EXCEPTIONS = {"CellTimeout", "TimedOutBefore", "KeyboardInterrupt", "SystemExit", "GeneratorExit"}


class NotReplayable(Exception):
    """A call the master's answers made that the replay cannot make again from outputs alone: the function
    changed its inputs in place, drew from the shared random numbers, or took or gave a value that cannot
    travel. The test is judged inside."""


def raised(ename: str, evalue: str) -> BaseException:
    """The stand-in for what a student's function raised, on the same side of `except Exception`; for one of
    Python's own exceptions, an instance of it too, so that a test's `except ValueError` catches it as it did."""
    if ename in BASE_EXCEPTIONS:
        return StudentRaisedBase(ename, evalue)
    builtin = getattr(builtins, ename, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception) and builtin is not Exception:
        made = _student_kind(builtin)(ename, evalue)  # type: ignore[arg-type]  # a class is hashable
        if type(made) is not StudentRaised:
            made.args = (evalue,)
        return made
    return StudentRaised(ename, evalue)


def _as_raised(self):
    return self.evalue


@functools.lru_cache(maxsize=None)
def _student_kind(builtin):
    """A class that is both StudentRaised and `builtin` (or the nearest of its bases that takes a message alone:
    UnicodeDecodeError's is ValueError), whose str() and args are the student's message, as the original's."""
    for base in builtin.__mro__:
        if base is Exception:
            break
        try:
            kind = type(builtin.__name__, (StudentRaised, base), {"__str__": _as_raised})
            made = kind("probe", "message")
            made.args = ("message",)
            return kind
        except Exception:  # noqa: BLE001 -- a built-in whose instances want more, or another layout: its base
            continue
    return StudentRaised


def defined_functions(source: str) -> list[str]:
    """Names of the functions a solution cell defines at its top level."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


# ---------------------------------------------------------------- the trusted helper files

@contextlib.contextmanager
def trusted_files(files: Iterable[tuple[str, bytes]], folder: str) -> Iterator[None]:
    """The assignment's own helper files (from source/), importable first, from `folder`, the current folder.

    They are written once and imported once per process; a module of the same name
    imported from anywhere else is dropped first, so a student's copy never stands in.
    """
    folder = os.path.abspath(folder)
    names = set()
    for path, data in files:
        target = os.path.normpath(os.path.join(folder, path))
        if not target.startswith(folder + os.sep):
            continue
        if path.endswith(".py") and os.sep not in path:
            names.add(path[:-3])
        if not os.path.exists(target) or open(target, "rb").read() != data:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            write_atomically(target, data)
    for name in names:
        module = sys.modules.get(name)
        if module is not None and os.path.dirname(os.path.abspath(getattr(module, "__file__", "") or "")) != folder:
            del sys.modules[name]
    sys.path.insert(0, folder)
    here = os.getcwd()
    os.chdir(folder)  # the assignment's files are where its code (the master's, the tests') looks for them
    try:
        yield
    finally:
        os.chdir(here)
        sys.path.remove(folder)


CELL_FILE = "<test cell>"  # the file name a test cell's code runs under here: tracebacks find its lines by it


@dataclass(frozen=True)
class Failure:
    """What a test cell raised when run here, and where in it."""
    ename: str
    evalue: str
    kind: str                   # "checks" (the test's own code failed on the outputs), "raised" (the student's
    #                             function raised), "mismatch" or "protocol" (the outputs could not be used)
    in_hidden: bool = False     # hidden code was running when it failed (the failing line, or a caller of it)
    before_hidden: bool = True  # it failed before any hidden code of the cell could have run


def _run(code, namespace, hidden_code=None, value=None):
    """Run a test cell's code in `namespace`; None, or the Failure it raised. With a list as `value`, the
    cell's last statement, an expression, is evaluated and its value appended (a partial credit)."""
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
            last = ast.Expression(tree.body.pop().value) if value is not None else None
            exec(compile(tree, CELL_FILE, "exec"), namespace)
            if last is not None:
                value.append(eval(compile(last, CELL_FILE, "eval"), namespace))
    except (StudentRaised, StudentRaisedBase) as error:
        return _failure(error, error.ename, error.evalue, "raised", hidden_code)
    except ReplayMismatch as error:
        return _failure(error, "ReplayMismatch", str(error), "mismatch", hidden_code)
    except wire.WireError as error:
        return _failure(error, "ProtocolError", f"the student's process sent malformed data: {error}", "protocol",
                        hidden_code)
    except Exception as error:
        return _failure(error, type(error).__name__, str(error), "checks", hidden_code)
    return None


def _failure(error, ename, evalue, kind, hidden_code):
    """The Failure, placed in the cell by the test cell's frames in its traceback."""
    lines = []
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == CELL_FILE:
            lines.append(trace.tb_lineno)
        trace = trace.tb_next
    if isinstance(error, SyntaxError) and error.filename == CELL_FILE and error.lineno:
        lines.append(error.lineno)
    if hidden_code is None:
        return Failure(ename, evalue, kind)
    if not lines:  # nowhere in the cell: as careful as if in hidden code, when it has any
        return Failure(ename, evalue, kind, in_hidden=bool(hidden_code.lines), before_hidden=not hidden_code.lines)
    return Failure(ename, evalue, kind, in_hidden=any(line in hidden_code.lines for line in lines),
                   before_hidden=not any(line in hidden_code.lines for line in lines)
                   and hidden_code.before_hidden(lines[0]))


# ---------------------------------------------------------------- 1. record, with the master's solution

def master_namespace(master_cells: Iterable[NotebookNode], seconds: float = 30.0,
                     problems: list[str] | None = None) -> dict[str, Any]:
    """What the master notebook defines, its test cells left out, run in a namespace of its own (trusted code).

    `master_cells` are the master notebook's cells (the gradebook keeps solution cells only as students got
    them). A cell that fails here (a plot this matplotlib no longer draws, a file it cannot find) or runs over
    `seconds` only defines less: stock nbgrader never runs the master, so the grader must not stop where it
    grades. What failed is appended to `problems` (for the instructor, once); the tests that need it cannot be
    recorded and are judged inside the sandbox.
    """
    shell = _master_shell()
    shell.user_ns["__name__"] = "__master__"
    quiet = io.StringIO()
    for number, cell in enumerate(master_cells, 1):
        meta = nbgrader_meta(cell)
        if cell.get("cell_type") != "code" or (meta.get("grade") and not meta.get("solution")):
            continue
        error = None
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), warnings.catch_warnings(), \
                    _time_limit(seconds):
                warnings.simplefilter("ignore")
                ran = shell.run_cell(cell.source, store_history=False, silent=True)
                error = ran.error_before_exec or ran.error_in_exec
        except ReplayTimeout as late:  # between two statements IPython's own code was running
            error = late
        if error is not None and problems is not None:
            what = f"ran over {seconds:g} s" if isinstance(error, ReplayTimeout) else \
                f"{type(error).__name__}: {str(error)[:200]}"
            problems.append(f"cell {meta.get('grade_id') or number} of the master failed in the grader ({what})")
        quiet.seek(0)
        quiet.truncate()
    return shell.user_ns


def record(cells: Sequence[MasterCell], master_cells: Sequence[NotebookNode], files: Iterable[tuple[str, bytes]],
           folder: str, markers: tuple[str, str] = hidden.DEFAULT, seconds: float = 30.0) -> Recorded:
    """(plans, inside, problems): TestPlan per test grade_id that the grader can replay, {grade_id: why} for the
    test cells it cannot, which are judged inside the sandbox only, and what failed in the master's own cells.
    The master's test cells (`cells`, from the gradebook) run on the functions of the master notebook
    (`master_cells`) and on the values its solution cells define (names the test reads: numbers, strings,
    lists, dicts, arrays, whatever travels as data), each cell for at most `seconds`."""
    solutions = [as_python(cell.source) for cell in master_cells
                 if is_solution_cell(cell) and cell.get("cell_type") == "code"]
    functions = [name for source in solutions for name in defined_functions(source)]
    values = {name for source in solutions for name in defined_names(source)} - set(functions)
    plans: dict[str, TestPlan] = {}
    inside: dict[str, str] = {}
    problems: list[str] = []
    with trusted_files(files, folder):
        imports = _working_imports(notebook_imports(master_cells), problems)
        imported = defined_names(imports)
        master = master_namespace(master_cells, seconds, problems)
        for cell in cells:
            if not cell.is_test or cell.cell_type != "code":
                continue
            calls = []

            def stand_in(name):
                def call(*args):
                    inputs = wire.encode(args)
                    absent = tuple(n for n in functions if n not in namespace)
                    drawn = _random_states()
                    try:
                        with without(master, absent):  # the master's code sees what the test deleted
                            value = master[name](*args)
                    except Exception as error:  # the test may expect it (`except ValueError`): a call all the same
                        calls.append(Call(name, inputs, {"k": "raised", "ename": type(error).__name__,
                                                         "evalue": str(error)[:500]}, absent))
                        raise
                    output = wire.encode(value, args)
                    if wire.encode(args) != inputs:
                        raise NotReplayable(f"{name}() changes its inputs in place, which the replay cannot see")
                    if _random_states() != drawn:
                        raise NotReplayable(f"{name}() draws from the random numbers the test shares, which the "
                                            "replay cannot draw again")
                    kind = wire.unsupported(inputs) or wire.unsupported(output)
                    if kind:
                        raise NotReplayable(f"{name}() gets or gives a {kind}, which cannot travel as plain data")
                    calls.append(Call(name, inputs, output, absent))
                    return value
                return call

            namespace = {"__name__": "__main__"}
            failed = _run(imports, namespace)
            namespace.update({name: stand_in(name) for name in functions})
            why = _not_replayable(cell.source, functions + sorted(values) + sorted(imported))
            if failed:
                why = f"the notebook's imports do not run in the grader ({failed.ename}: {failed.evalue[:120]})"
            for name in (read_names(cell.source) & values) - imported if why is None else ():
                try:
                    encoded = wire.encode(master[name])
                    namespace[name] = wire.decode(encoded)  # the test gets a copy, as it will in the replay
                except Exception as error:
                    why = f"it reads {name}, which cannot travel as plain data ({type(error).__name__})"
                    break
                calls.append(Call(name, None, encoded))
            value: list[Any] | None = [] if ends_in_expression(cell.source) else None
            try:
                with _time_limit(seconds):
                    failed = _run(cell.source, namespace, value=value) if why is None else None
            except ReplayTimeout:
                failed, why = None, f"its checks ran over {seconds:g} s on the master's answers"
            if failed and failed.ename == NotReplayable.__name__:
                why = f"its calls cannot be made again outside the notebook: {failed.evalue}"
            elif failed:
                why = f"its checks do not run outside the notebook ({failed.ename}: {failed.evalue[:120]})"
            if why:
                inside[cell.grade_id] = why
            else:  # a partial credit where the master's answers give a number, as nbgrader would read one
                scored = bool(value and not _is_bool(value[0]) and credit_of(value[0])[1] is None)
                plans[cell.grade_id] = TestPlan(cell.grade_id, cell.source, tuple(calls), scored, imports,
                                                tuple(functions), markers)
    _run_whole_for_later_tests(cells, plans, inside, markers)
    return plans, inside, problems


def _run_whole_for_later_tests(cells, plans, inside, markers):
    """Stock runs every hidden block in the kernel, so a later test may use what one defined (a hidden `R22`
    checked again further down). A test cell judged inside runs whole in the student's process; an earlier
    test cell whose hidden code binds a name it reads must then run whole there too: it moves from `plans`
    to `inside`, saying why."""
    tests = [cell for cell in cells if cell.is_test and cell.cell_type == "code"]
    moved = True
    while moved:
        moved = False
        for k, cell in enumerate(tests):
            if cell.grade_id not in plans:
                continue
            bound = defined_names(cell.source) - defined_names(hidden.strip(cell.source, markers))
            readers = [(later.grade_id, names) for later in tests[k + 1:] if later.grade_id in inside
                       for names in [_names_read(later.source) & bound] if names]
            if readers:
                later, names = readers[0]
                del plans[cell.grade_id]
                inside[cell.grade_id] = (f"its hidden code defines {', '.join(sorted(names))}, which {later} reads: "
                                         "it runs whole in the student's process, as stock runs it")
                moved = True


def _names_read(source):
    try:
        return read_names(source)
    except SyntaxError:
        return set()


def record_apart(notebooks: Sequence[MasterNotebook], folder: str, seconds: float = 30.0) -> list[Recorded]:
    """`record` for each notebook of an assignment, in a process of its own: the master's code may loop, exit,
    change the folder or patch a library, and none of that reaches the grader. `notebooks` holds
    (test cells, master cells, files, hidden markers) per notebook; returns (plans, inside, problems) for each.
    A recording that does not finish (the process dies, or runs past its time) judges every test of its
    notebooks inside the sandbox, and says why."""
    # A child of the warm fork server, which holds nothing of the grader's state (see warm.py) and has numpy,
    # IPython and matplotlib imported already: a fresh interpreter (spawn) would import them again, about a second.
    # A batch's pool workers, which replay the tests, are children of the same server: the same libraries.
    context = warm.context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_record_child, args=(sender, notebooks, folder, seconds), daemon=True)
    cells = sum(len(master) for _, master, _, _ in notebooks) + sum(len(tests) for tests, _, _, _ in notebooks)
    deadline = 60 + seconds * cells  # every cell at its limit, and the interpreter's start
    why = None
    try:
        # The child starts with Ctrl-C held back: the command answers it (see grader/__main__.py), and a Ctrl-C
        # held during the start lands here, inside the block that stops the child.
        with interrupts.held():
            process.start()
        sender.close()
        if receiver.poll(deadline):
            outcome = receiver.recv()
            why = outcome if isinstance(outcome, str) else None
        else:
            why = f"it ran over {deadline:g} s"
    except (EOFError, OSError):
        why = f"its process ended early (exit code {process.exitcode})"
    finally:
        if process.pid is not None:
            process.kill()
            process.join()
        receiver.close()
    if why is None:
        return outcome
    reason = f"the master notebook could not be run in the grader ({why})"
    return [({}, {cell.grade_id: reason for cell in tests if cell.is_test and cell.cell_type == "code"}, [reason])
            for tests, _, _, _ in notebooks]


def _record_child(sender, notebooks, folder, seconds):
    """The recording process: sends the list of (plans, inside, problems), or why it could not."""
    sandbox.die_with_parent()  # a grader that ends (Ctrl-C, or killed) takes its recording with it
    try:
        outcome = [record(tests, master, files, folder, markers, seconds)
                   for tests, master, files, markers in notebooks]
    except BaseException as error:  # noqa: BLE001 -- the master's code may raise anything, SystemExit included
        outcome = f"{type(error).__name__}: {str(error)[:200]}"
    try:
        sender.send(outcome)
    except OSError:
        return  # the grader has stopped waiting (Ctrl-C): there is no one to tell
    except BaseException as error:  # noqa: BLE001 -- an outcome that cannot be sent: say why instead
        with contextlib.suppress(OSError):
            sender.send(f"{type(error).__name__}: {str(error)[:200]}")


def _working_imports(imports, problems):
    """The import statements of `imports` that run here, one by one: one that fails (a name a library no longer
    has) is left out and named in `problems`, and only the tests that use what it imports are judged inside."""
    working = []
    for line in imports.splitlines():
        failed = _run(line, {"__name__": "__main__"})
        if failed:
            problems.append(f"`{line[:120]}` fails in the grader ({failed.ename}: {failed.evalue[:120]})")
        else:
            working.append(line)
    return "\n".join(working)


def _random_states():
    """The state of the random numbers a test and the functions it calls share (numpy's and Python's)."""
    import random

    import numpy as np
    state = np.random.get_state()
    return state[0], state[1].tobytes(), state[2:], random.getstate()


def credit_of(value: object) -> tuple[float | None, str | None]:
    """(number, None) when a partial-credit value is one finite real number, else (None, why it counts nothing).

    Python's and numpy's numbers (a 0-d array, a Decimal too) count as the numbers they are; a bool as 0 or 1. NaN, an
    infinite float, an array, a string or any other object is not a score (nbgrader would give it full marks).
    """
    import numpy as np

    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        value = value.item()
    if not isinstance(value, (numbers.Real, np.bool_, decimal.Decimal)):
        return None, f"the test's value is {_kind(value)}, not a number"
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float: finite, and beyond any cell's points
        return (math.inf if value > 0 else -math.inf), None  # type: ignore[operator]  # only an int overflows float()
    if math.isnan(number):
        return None, "the test's value is NaN, not a number"
    if math.isinf(number):
        return None, "the test's value is infinite"
    return number, None


def _is_bool(value):
    """A check's answer (`np.allclose(...)` as the last line), which nbgrader does not read as a score."""
    return type(value).__name__ in ("bool", "bool_") and type(value).__module__ in ("builtins", "numpy")


def _kind(value):
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"[:60]


def defined_names(source: str) -> set[str]:
    """Names a cell binds at its top level (assignments, imports, definitions)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found = set()
    for node in tree.body:
        for sub in ast.walk(node) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For,
                                                       ast.With)) else ():
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                found.add(sub.id)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return found


def read_names(source: str) -> set[str]:
    """Names a cell reads that it does not bind itself."""
    tree = ast.parse(source)
    nodes = list(ast.walk(tree))
    bound = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
    bound |= {n.name for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    bound |= {(a.asname or a.name).split(".")[0] for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom))
              for a in n.names}
    bound |= {a.arg for n in nodes if isinstance(n, ast.arguments) for a in n.posonlyargs + n.args + n.kwonlyargs}
    bound |= {n.name for n in nodes if isinstance(n, ast.ExceptHandler) and n.name}
    return {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound - set(dir(builtins))


def _not_replayable(source, known):
    """Why the test cell `source` cannot be judged outside the student's process, or None.

    The replay gives a test the student's functions (through their recorded outputs) and the values their
    solution cells define (`known` names both); a test that reads anything else of the notebook is judged inside.
    """
    try:
        read = sorted(read_names(source) - set(known))
    except SyntaxError as error:
        return f"it is not valid Python ({error.msg})"
    if read:
        return f"it reads {', '.join(read[:5])} from the notebook, beyond the answers it checks"
    return None


# ---------------------------------------------------------------- 3. replay, with the student's outputs

REPLAY_SECONDS = 10.0  # the least time a replay is given (see grading._judge_outside)


@dataclass
class Verdict:
    grade_id: str
    passed: bool
    ename: str = ""
    evalue: str = ""
    kind: str = ""                 # see Failure; "missing" when no outputs came back
    in_hidden: bool = False        # hidden code was running when it failed
    before_hidden: bool = True     # it failed before any hidden code of the cell could have run
    value: float | None = None     # a partial-credit cell's value, computed here, when it is a number
    value_problem: str = ""        # why a partial-credit cell's value is not a score (see credit_of)
    exact: bool = True             # the outputs are here exactly as the student's functions gave them (wire.exact)
    untravelled: str = ""          # the type of an output that could not travel at all, if any

    @property
    def contradicts_the_notebook(self) -> bool:
        """The checks the notebook ran (and passed) fail here on the very outputs the student's code gave, before
        any hidden code ran (the student's process ran the same visible code, on the same state, on the same
        values: not a value that did not travel exactly)."""
        return (self.kind == "checks" and self.before_hidden and self.exact) or self.kind == "protocol"

    @property
    def message_may_show(self) -> bool:
        """Nothing of the hidden code (its text, its values, what it made the student's function do) is in the
        failure's message: it failed in visible code, before any hidden code ran."""
        return self.passed or (self.before_hidden and not self.in_hidden)


def replay(plan: TestPlan, outputs: Sequence[Any] | None, files: Iterable[tuple[str, bytes]], folder: str,
           seconds: float = 30.0) -> Verdict:
    """Judge one test cell on the student's `outputs` (wire nodes, one per recorded call).

    The outputs are bounded in size (wire.py), so honest checks finish in a fraction of a
    second; `seconds` bounds the rest, where the process allows a timer (its main thread).
    """
    if outputs is None:
        return Verdict(plan.grade_id, False, "NotRun", "the student's process sent no outputs for this test",
                       "missing")
    if len(outputs) != len(plan.calls):
        return Verdict(plan.grade_id, False, "ProtocolError", f"{len(outputs)} outputs for {len(plan.calls)} calls",
                       "protocol")
    reads = [c for c in plan.calls if c.reads]
    exact = all(wire.exact(node) for node in outputs)
    untravelled = next(filter(None, map(wire.unsupported, outputs)), "") if not exact else ""
    if exact and not plan.partial_credit and all(got == call.master_output for got, call in zip(outputs, plan.calls)):
        # Bit for bit what the master returned (sharing included): the replay would run exactly as the
        # recording did, which passed. The test code is deterministic, so this is the same verdict, sooner.
        return Verdict(plan.grade_id, True)
    position = [len(reads)]

    def stand_in(name):
        def call(*args):
            k = position[0]
            position[0] += 1
            if k >= len(plan.calls) or plan.calls[k].function != name \
                    or wire.encode(args) != plan.calls[k].inputs \
                    or tuple(n for n in functions if n not in namespace) != plan.calls[k].absent:
                raise ReplayMismatch(f"the test called {name}() with inputs the grader did not run")
            node = outputs[k]
            if isinstance(node, dict) and node.get("k") == "raised":
                raise raised(valid_text(str(node.get("ename", "Exception"))[:100]),
                             valid_text(str(node.get("evalue", ""))[:500]))
            return wire.decode(node, args)
        return call

    functions = sorted(set(plan.functions) | {c.function for c in plan.calls if not c.reads})
    namespace, values = {"__name__": "__main__"}, []
    for k, call in enumerate(reads):  # the values the student's cells defined, as plain data
        node = outputs[k]
        if isinstance(node, dict) and node.get("k") == "raised":
            return Verdict(plan.grade_id, False, "NameError", f"name '{call.function}' is not defined", "raised")
        try:
            values.append(wire.decode(node))
        except wire.WireError as error:
            return Verdict(plan.grade_id, False, "ProtocolError", f"the student's process sent malformed data: "
                           f"{error}", "protocol")
    value: list[Any] | None = [] if plan.partial_credit else None
    with trusted_files(files, folder), _time_limit(seconds):
        try:
            _run(plan.imports, namespace)  # as recorded: it ran there
            namespace.update({name: stand_in(name) for name in functions})
            for k, call in enumerate(reads):
                namespace[call.function] = values[k]
            failed = _run(plan.source, namespace, plan.hidden, value)
            if failed:
                return Verdict(plan.grade_id, False, failed.ename, failed.evalue, failed.kind, failed.in_hidden,
                               failed.before_hidden, exact=exact, untravelled=untravelled)
        except ReplayTimeout:
            return Verdict(plan.grade_id, False, "ProtocolError",
                           f"the grader's own run of this test took over {seconds:g} s on these outputs", "protocol",
                           in_hidden=bool(plan.hidden.lines), before_hidden=not plan.hidden.lines)
    if not value:
        return Verdict(plan.grade_id, True)
    number, problem = credit_of(value[0])
    return Verdict(plan.grade_id, True, value=number, value_problem=problem or "")


@contextlib.contextmanager
def _time_limit(seconds):
    if threading.current_thread() is not threading.main_thread():
        yield  # a Dask worker's task thread: no timer there; the outputs' size caps still bound the work
        return

    def expire(*_):
        raise ReplayTimeout()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
