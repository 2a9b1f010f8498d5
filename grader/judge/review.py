"""A static scan of a submission's code for what tampering uses. It informs; it never scores.

Each finding is a short phrase for the instructor ("patches numpy: np.allclose = ..."),
shown in the CSV, the summary table and the class report. An honest notebook has
none; a finding is a reason to read the code, not proof of anything.
"""
from __future__ import annotations

import ast
import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

# Modules whose patching is worth a look; the assignment's own helper modules are added (see `scan`).
PROVIDED_MODULES = {"np", "numpy", "builtins", "__builtins__", "math", "IPython"}

# (what it means, attribute or function names whose use alone is worth a look)
NAMES = [
    ("IPython hooks", {"get_ipython", "input_transformers_cleanup", "input_transformers_post", "ast_transformers",
                       "set_custom_exc", "showtraceback", "_showtraceback", "displayhook", "excepthook",
                       "register_magic_function", "run_line_magic", "run_cell_magic"}),
    ("tracing or frame access", {"settrace", "setprofile", "_getframe", "currentframe", "f_locals", "f_globals",
                                 "f_back", "get_referrers", "get_objects", "gettrace", "addaudithook"}),
    ("signal or process control", {"killpg", "forkpty", "setitimer", "pthread_kill", "pidfd_open", "execv",
                                   "execve", "execvp", "spawnv", "posix_spawn"}),
    ("ctypes or native code", {"CDLL", "PyDLL", "pythonapi"}),
]
# What makes a value pass checks it should fail: `x == expected` true for anything, `abs(x - expected)` zero.
COMPARISON = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__sub__", "__rsub__", "__abs__",
              "__float__", "__array__", "__array_ufunc__", "__array_function__"}
FORGING_OBJECTS = "objects that redefine comparison"
# Findings that can forge a test judged inside the student's process (see grading: `forgeable`).
UNREADABLE = "code the scan could not read"
FORGING = (FORGING_OBJECTS, UNREADABLE, "IPython hooks", "tracing or frame access", "patching", "dynamic code")

# Names that are ordinary words elsewhere, worth a look only on these modules.
MODULE_NAMES = {
    "os": {"kill": "signal or process control", "fork": "signal or process control",
           "system": "signal or process control", "popen": "signal or process control",
           "_exit": "signal or process control", "listdir": "database or file access",
           "scandir": "database or file access", "walk": "database or file access",
           "chdir": "database or file access", "remove": "database or file access",
           "unlink": "database or file access", "open": "database or file access"},
    "signal": {"signal": "signal or process control", "alarm": "signal or process control"},
    "shutil": {"rmtree": "database or file access", "copy": "database or file access"},
}
# Imports worth a look, by top-level module.
MODULES = {"ctypes": "ctypes or native code", "cffi": "ctypes or native code", "mmap": "ctypes or native code",
           "signal": "signal or process control", "subprocess": "signal or process control",
           "multiprocessing": "signal or process control", "pty": "signal or process control",
           "threading": "signal or process control", "sqlite3": "database or file access",
           "sqlalchemy": "database or file access", "socket": "database or file access",
           "shutil": "database or file access", "glob": "database or file access",
           "pathlib": "database or file access", "gc": "tracing or frame access",
           "inspect": "tracing or frame access", "builtins": "patching builtins",
           "importlib": "patching the provided modules"}


def scan(sources: Iterable[str], helpers: Iterable[str] = ()) -> list[str]:
    """Findings for a list of code cell sources; each finding is a short phrase, at most one per kind.
    `helpers`: the module names of the Python files the assignment ships, which are patched like numpy."""
    provided = frozenset(PROVIDED_MODULES | set(helpers))
    found: dict[str, str] = {}
    for source in sources:
        # Cached by the cell's text: most cells of a class are the ones handed out, unchanged, and the findings
        # depend on nothing else. A very long cell is not worth keeping.
        for kind, detail in (_scan_cell if len(source) < 10_000 else _findings)(source, provided):
            found.setdefault(kind, detail)
    return [f"{kind}: {detail}" for kind, detail in found.items()]


def _findings(source, provided):
    """(kind, detail) of each finding in one cell, in order."""
    found = []
    try:
        for node in ast.walk(ast.parse(_without_magics(source))):
            found += _look(node, provided)
    except SyntaxError:
        return ()
    except (RecursionError, MemoryError, ValueError) as error:
        # Code nested beyond what Python's own parser takes (a 30,000-term expression): a finding, never an
        # error of the grader's (which would turn the submission into one awaiting a manual grade).
        found.append((UNREADABLE, f"{type(error).__name__} while parsing a cell"))
    magic = next((line for line in source.splitlines() if _is_magic(line)), None)  # line by line: linear
    if magic is not None:
        found.append(("shell commands or magics", magic.strip()[:60]))
    if re.search(r"(?<![\w.])open\(\s*['\"](/|\.\.)", source):
        found.append(("file access outside the working copy", "open() of an absolute or parent path"))
    return tuple(found)


_scan_cell = functools.lru_cache(maxsize=2048)(_findings)  # at most 20 MB of keys


def _is_magic(line):
    return line.lstrip().startswith(("!", "%"))


def _without_magics(source):
    return "\n".join("pass" if _is_magic(line) else line for line in source.splitlines())


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _look(node, provided):
    # Assignments to an attribute of a provided module, or of the builtins: np.allclose = ...
    targets = []
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    elif isinstance(node, ast.Delete):
        targets = node.targets
    for target in targets:
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            name = _dotted(target.value if isinstance(target, ast.Subscript) else target)
            root = (name or "").split(".")[0]
            if root in provided or root in ("sys", "os"):
                what = "patching builtins" if "builtins" in root else f"patching {root}"
                yield what, f"{name} = ..."
    if isinstance(node, ast.Call):
        name = _dotted(node.func) or ""
        if name in ("setattr", "delattr") and node.args:
            root = (_dotted(node.args[0]) or "").split(".")[0]
            if root in provided:
                yield f"patching {root}", f"{name}({root}, ...)"
        if name in ("eval", "exec", "compile", "__import__"):
            yield "dynamic code", f"{name}(...)"
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        for module in names:
            kind = MODULES.get(module.split(".")[0])
            if kind:
                yield kind, f"import {module}"
    if isinstance(node, ast.Name) and node.id in ("__builtins__", "__class__", "__subclasses__"):
        yield "patching builtins", node.id
    if isinstance(node, (ast.Attribute, ast.Name)):
        word = node.attr if isinstance(node, ast.Attribute) else node.id
        for kind, words in NAMES:
            if word in words:
                yield kind, _dotted(node) or word
                break
        if isinstance(node, ast.Attribute):
            root = _dotted(node.value) or ""
            kind = MODULE_NAMES.get(root, {}).get(word)
            if kind:
                yield kind, f"{root}.{word}"
    if isinstance(node, ast.Attribute) and node.attr in ("modules",) and _dotted(node) == "sys.modules":
        yield "patching the provided modules", "sys.modules"
    if isinstance(node, ast.ClassDef):
        methods = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        methods |= {t.id for n in node.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        if methods & COMPARISON:
            yield FORGING_OBJECTS, f"class {node.name} defines " + ", ".join(sorted(methods & COMPARISON))
    if isinstance(node, ast.Constant) and node.value in COMPARISON:  # type("X", (int,), {"__eq__": ...}), setattr
        yield FORGING_OBJECTS, f"the name {node.value} as a string"
