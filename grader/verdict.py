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
there but its visible checks fail here on the same outputs, something in the
student's process changed what the test saw: `tampering suspected`.

A test cell may also read values the student's cells define (`answer = 42`): the
sandbox sends them back as plain data after the cell, and the replay gives the test
those copies. The notebook's own imports (in its cells that are not tests) run first,
in the grader, so a test may use what they import. A cell ending in an expression is a partial credit: the replay computes
its value, which is the score (never the value the student's process displayed).

Nothing here is specific to an assignment: a test cell qualifies if it calls the
student's functions with positional arguments, the inputs it gives them do not
depend on what those functions returned (the recording and the replay would then
differ, and the replay says so and fails), and it reads nothing else of the notebook
than those functions and values. `record` says which cells do not qualify and why;
they are judged inside the sandbox only. The canary proves the rest for every cell.
"""
import ast
import builtins
import contextlib
import io
import os
import re
import signal
import sys
import threading
import warnings
from dataclasses import dataclass

from . import wire
from .plain_text import valid_text

HIDDEN_BLOCK = re.compile(r"^### BEGIN HIDDEN TESTS[^\n]*\n.*?^### END HIDDEN TESTS[^\n]*(\n|$)", re.S | re.M)


@dataclass(frozen=True)
class Call:
    function: str        # the student's function called, or the name read (see `reads`)
    inputs: dict         # wire-encoded (args tuple); None for a name the test reads
    master_output: dict  # wire-encoded, what the master's solution returned (or the master's value of the name)

    @property
    def reads(self):
        return self.inputs is None


@dataclass(frozen=True)
class TestPlan:
    """One test cell, as the outside verdict runs it."""
    grade_id: str
    segments: tuple  # (code, hidden?) in order: the cell split at its hidden-test blocks
    calls: tuple     # Call: first the names the test reads (values), then the calls in the order the master made them
    partial_credit: bool = False  # the cell ends in an expression: nbgrader reads a score from its value
    imports: str = ""  # the notebook's own imports (its non-test cells'), run first: the test may use them


def notebook_imports(master_cells):
    """The import statements at the top level of the master's cells that are not tests, as code."""
    lines = []
    for cell in master_cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or (meta.get("grade") and not meta.get("solution")):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue  # a magic: nothing to import from it
        lines += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(dict.fromkeys(lines))


def ends_in_expression(source):
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

    def __init__(self, ename, evalue):
        super().__init__(f"{ename}: {evalue}" if evalue else ename)
        self.ename, self.evalue = ename, evalue


class StudentRaisedBase(BaseException):
    """Stands for a BaseException the student's function raised (a timeout, SystemExit...): like the
    original, it passes through a test's `except Exception`, so the replay fails where the notebook did."""

    def __init__(self, ename, evalue):
        super().__init__(f"{ename}: {evalue}" if evalue else ename)
        self.ename, self.evalue = ename, evalue


# What the sandbox raises or Python raises outside the Exception hierarchy (execute.CellTimeout and
# its subclass included). A student can only name these to make their own test fail.
BASE_EXCEPTIONS = {"CellTimeout", "TimedOutBefore", "KeyboardInterrupt", "SystemExit", "GeneratorExit"}


def raised(ename, evalue):
    """The stand-in for what a student's function raised, on the same side of `except Exception`."""
    return (StudentRaisedBase if ename in BASE_EXCEPTIONS else StudentRaised)(ename, evalue)


def split_segments(source):
    """The cell as (code, is_hidden) pieces. A hidden block that is indented is not split out."""
    segments, position = [], 0
    for match in HIDDEN_BLOCK.finditer(source):
        if match.start() > position:
            segments.append((source[position:match.start()], False))
        segments.append((match.group(0), True))
        position = match.end()
    if position < len(source):
        segments.append((source[position:], False))
    return tuple(segments)


def defined_functions(source):
    """Names of the functions a solution cell defines at its top level."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


# ---------------------------------------------------------------- the trusted helper files

@contextlib.contextmanager
def trusted_files(files, folder):
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
            partial = f"{target}.{os.getpid()}.part"
            with open(partial, "wb") as f:
                f.write(data)
            os.replace(partial, target)
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


def _run_segment(code, namespace, value=None):
    """Run one piece of a test cell; None, or (ename, evalue, kind) of what it raised. With a list as `value`,
    the piece's last statement, an expression, is evaluated and its value appended (the partial credit).

    kind is "checks" when the test's own code failed on the outputs, "raised" when the
    student's function raised, "mismatch" or "protocol" when the outputs could not be used.
    """
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if value is None:
                exec(compile(code, "<test cell>", "exec"), namespace)
            else:
                tree = ast.parse(code)
                last = ast.Expression(tree.body.pop().value)
                exec(compile(tree, "<test cell>", "exec"), namespace)
                value.append(eval(compile(last, "<test cell>", "eval"), namespace))
    except (StudentRaised, StudentRaisedBase) as error:
        return error.ename, error.evalue, "raised"
    except ReplayMismatch as error:
        return "ReplayMismatch", str(error), "mismatch"
    except wire.WireError as error:
        return "ProtocolError", f"the student's process sent malformed data: {error}", "protocol"
    except Exception as error:
        return type(error).__name__, str(error), "checks"
    return None


# ---------------------------------------------------------------- 1. record, with the master's solution

def master_namespace(master_cells):
    """What the master notebook defines, its test cells left out, run in a namespace of its own (trusted code).

    `master_cells` are the master notebook's cells (the gradebook keeps solution cells only as students got
    them). A cell that cannot run outside Jupyter (a magic, a plot) only defines less.
    """
    namespace = {"__name__": "__master__"}
    quiet = io.StringIO()
    for cell in master_cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or (meta.get("grade") and not meta.get("solution")):
            continue
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(cell.source, f"<master {meta.get('grade_id')}>", "exec"), namespace)
        except Exception:
            if meta.get("solution"):
                raise
        quiet.seek(0)
        quiet.truncate()
    return namespace


def record(cells, master_cells, files, folder):
    """(plans, inside): TestPlan per test grade_id that the grader can replay, and {grade_id: why} for the test
    cells it cannot, which are judged inside the sandbox only. The master's test cells (`cells`, from the
    gradebook) run on the functions of the master notebook (`master_cells`) and on the values its solution
    cells define (names the test reads: numbers, strings, lists, dicts, arrays, whatever travels as data)."""
    solutions = [cell.source for cell in master_cells if cell.get("metadata", {}).get("nbgrader", {}).get("solution")
                 and cell.get("cell_type") == "code"]
    functions = [name for source in solutions for name in defined_functions(source)]
    values = {name for source in solutions for name in defined_names(source)} - set(functions)
    imports = notebook_imports(master_cells)
    imported = defined_names(imports)
    plans, inside = {}, {}
    with trusted_files(files, folder):
        master = master_namespace(master_cells)
        for cell in cells:
            if not cell.is_test or cell.cell_type != "code":
                continue
            calls = []

            def stand_in(name):
                def call(*args):
                    inputs = wire.encode(args)
                    value = master[name](*args)
                    calls.append(Call(name, inputs, wire.encode(value, args)))
                    return value
                return call

            namespace = {"__name__": "__main__"}
            failed = _run_segment(imports, namespace)
            namespace.update({name: stand_in(name) for name in functions})
            segments = split_segments(cell.source)
            why = _not_replayable(cell.source, functions + sorted(values) + sorted(imported))
            if failed:
                why = f"the notebook's imports do not run in the grader ({failed[0]}: {failed[1][:120]})"
            for name in (read_names(cell.source) & values) - imported if why is None else ():
                try:
                    encoded = wire.encode(master[name])
                    namespace[name] = wire.decode(encoded)  # the test gets a copy, as it will in the replay
                except Exception as error:
                    why = f"it reads {name}, which cannot travel as plain data ({type(error).__name__})"
                    break
                calls.append(Call(name, None, encoded))
            for code, hidden in segments if why is None else ():
                failed = _run_segment(code, namespace)
                if failed:
                    why = f"its checks do not run outside the notebook ({failed[0]}: {failed[1][:120]})"
                    break
            if why:
                inside[cell.grade_id] = why
            else:
                plans[cell.grade_id] = TestPlan(cell.grade_id, segments, tuple(calls),
                                                ends_in_expression(cell.source), imports)
    return plans, inside


def defined_names(source):
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


def read_names(source):
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
    kind: str = ""                 # see _run_segment; "missing" when no outputs came back
    in_visible_part: bool = False  # the failure came from the part of the cell students can see
    value: str = None              # a partial-credit cell's value as IPython shows it, computed here

    @property
    def contradicts_the_notebook(self):
        """The checks the notebook ran (and passed) fail here on the very outputs the student's code gave."""
        return (self.kind == "checks" and self.in_visible_part) or self.kind == "protocol"


def replay(plan, outputs, files, folder, seconds=30.0):
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
    if not plan.partial_credit and all(got == call.master_output for got, call in zip(outputs, plan.calls)):
        # Bit for bit what the master returned (sharing included): the replay would run exactly as the
        # recording did, which passed. The test code is deterministic, so this is the same verdict, sooner.
        return Verdict(plan.grade_id, True)
    position = [len(reads)]

    def stand_in(name):
        def call(*args):
            k = position[0]
            position[0] += 1
            if k >= len(plan.calls) or plan.calls[k].function != name \
                    or wire.encode(args) != plan.calls[k].inputs:
                raise ReplayMismatch(f"the test called {name}() with inputs the grader did not run")
            node = outputs[k]
            if isinstance(node, dict) and node.get("k") == "raised":
                raise raised(valid_text(str(node.get("ename", "Exception"))[:100]),
                             valid_text(str(node.get("evalue", ""))[:500]))
            return wire.decode(node, args)
        return call

    functions = sorted({c.function for c in plan.calls if not c.reads})
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
    value = []
    with trusted_files(files, folder), _time_limit(seconds):
        try:
            _run_segment(plan.imports, namespace)  # as recorded: it ran there
            namespace.update({name: stand_in(name) for name in functions})
            for k, call in enumerate(reads):
                namespace[call.function] = values[k]
            for number, (code, hidden) in enumerate(plan.segments, 1):
                last = plan.partial_credit and number == len(plan.segments)
                failed = _run_segment(code, namespace, value if last else None)
                if failed:
                    return Verdict(plan.grade_id, False, *failed, in_visible_part=not hidden)
        except ReplayTimeout:
            return Verdict(plan.grade_id, False, "ProtocolError",
                           f"the grader's own run of this test took over {seconds:g} s on these outputs", "protocol")
    return Verdict(plan.grade_id, True, value=_shown(value[0]) if value else None)


def _shown(value):
    """`value` as IPython displays it (text/plain), which is what nbgrader reads a partial credit from."""
    from IPython.lib.pretty import pretty
    return None if value is None else pretty(value)[:200]


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


# ---------------------------------------------------------------- 2. in the sandbox

def run_calls(namespace, calls):
    """Call the student's functions on each recorded input; wire nodes of what they returned.

    Runs inside the student's process, so nothing here is trusted by the grader: it only
    has to work for an honest notebook. (`calls` reach it without the master's outputs.)
    """
    results = []
    for call in calls:
        try:
            if call.inputs is None:  # a name the test reads: its value
                if call.function not in namespace:
                    raise NameError(f"name '{call.function}' is not defined")
                results.append(wire.encode(namespace[call.function]))
                continue
            args = wire.decode(call.inputs)
            function = namespace.get(call.function)
            if function is None:
                raise NameError(f"name '{call.function}' is not defined")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = function(*args)
            results.append(wire.encode(value, args))
        except BaseException as error:  # noqa: B902 -- a timeout must not stop the others' report
            results.append({"k": "raised", "ename": type(error).__name__, "evalue": str(error)[:500]})
    return results
