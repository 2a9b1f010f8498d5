"""The engine's house: a package per stage, imports that only point down, no cycle.

Read from the source with `ast` (every import, at the top of a module or inside a function), so a new import that
points up a stage, or closes a cycle, fails here before anyone meets it at run time.
"""
import ast
import importlib
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

STAGES = ["core", "course", "collect", "run", "judge", "grade", "report", "similarity", "app"]
# Which packages each may import, besides itself: some of those before it in STAGES (each package's docstring
# names them, and the README's Layout draws them).
MAY_IMPORT = {
    "core": set(),
    "course": {"core"},
    "collect": {"core", "course"},
    "run": {"core"},
    "judge": {"core", "course", "run"},
    "grade": {"core", "course", "collect", "run", "judge"},
    "report": {"core", "course", "judge", "grade"},
    "similarity": {"core", "course", "judge", "grade", "report"},
    "app": {"core", "course", "collect", "run", "judge", "grade", "report", "similarity"},
    # The entry points at the top of grader/: the command line and nbgrader's hook.
    "grader": set(STAGES),
    # The measuring tools, outside the engine: anything of it.
    "grader_eval": set(STAGES) | {"grader"},
}


def modules():
    """dotted name -> path, for every module of grader/ and grader_eval/."""
    found = {}
    for path in [*(ROOT / "grader").rglob("*.py"), *(ROOT / "grader_eval").rglob("*.py")]:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name, path, known):
    """The modules of `known` that module `name` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + [node.module] if node.module else base)
            out |= {f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m in known and m != name}


def package_of(module):
    parts = module.split(".")
    return parts[1] if parts[0] == "grader" and len(parts) > 1 and parts[1] in STAGES else parts[0]


def graph():
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def test_every_import_points_down_the_stages():
    upward = [f"{a} imports {b}" for a, bs in graph().items() for b in sorted(bs)
              if package_of(b) != package_of(a) and package_of(b) not in MAY_IMPORT[package_of(a)]]
    assert not upward, "imports against the stages' order (tests/test_layout.py, README Layout):\n" + "\n".join(upward)


def cycles():
    """Every import cycle among the modules, each as a list of module names that ends where it began."""
    edges = graph()
    found, done = [], set()

    def visit(node, path):
        if node in path:
            found.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(edges[node]):
            visit(nxt, path + [node])
        done.add(node)
    for start in sorted(edges):
        visit(start, [])
    return found


def test_no_module_imports_itself_back_through_others():
    assert not cycles(), "\n".join(" -> ".join(c) for c in cycles())


def test_the_stage_order_itself_has_no_cycle_and_every_stage_is_a_package():
    for stage in STAGES:
        assert (ROOT / "grader" / stage / "__init__.py").is_file(), stage
    for stage, allowed in MAY_IMPORT.items():
        for other in allowed:
            assert stage not in MAY_IMPORT.get(other, set()), f"{stage} and {other} may import each other"


def test_every_package_states_its_contract_and_its_public_modules():
    for package in [*(f"grader.{s}" for s in STAGES), "grader_eval"]:
        loaded = importlib.import_module(package)
        assert loaded.__doc__ and len(loaded.__doc__) > 100, f"{package}: say what the package does and imports"
        folder = Path(loaded.__file__).parent
        on_disk = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
        assert sorted(loaded.__all__) == sorted(on_disk), f"{package}: __all__ lists its modules"


def test_the_engine_never_imports_its_measuring_tools():
    # grader/__main__.py adds the tools' commands to `python -m grader` by name (importlib), at run time only.
    into_eval = [a for a, bs in graph().items() if package_of(a) != "grader_eval"
                 and any(package_of(b) == "grader_eval" for b in bs)]
    assert not into_eval, into_eval


def unhinted(path):
    """'module:line name' of each public function or public class's method in `path` (at the module's top level)
    missing a parameter's or the return's hint."""
    found = []
    module = ast.parse(path.read_text())
    public_classes = [c for c in module.body if isinstance(c, ast.ClassDef) and not c.name.startswith("_")]
    for node in [module, *public_classes]:
        for f in node.body:
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) and not f.name.startswith("_"):
                params = [a for a in [*f.args.posonlyargs, *f.args.args, *f.args.kwonlyargs]
                          if a.arg not in ("self", "cls")]
                if f.returns is None or any(a.annotation is None for a in params):
                    found.append(f"{path.relative_to(ROOT)}:{f.lineno} {f.name}")
    return found


def test_every_public_function_of_the_engine_says_what_it_takes_and_gives():
    missing = [line for path in sorted((ROOT / "grader").rglob("*.py")) for line in unhinted(path)]
    assert not missing, "public functions without type hints:\n" + "\n".join(missing)


def test_the_type_hints_agree_with_the_code_that_calls_them():
    # mypy as configured in pyproject.toml ([tool.mypy]: the engine, third-party packages without stubs as Any).
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_layout_names_every_module_of_the_engine():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("```", layout.index("```") + 3)]
    unnamed = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "grader").rglob("*.py"))
               if p.name != "__init__.py" and p.name not in layout]
    assert not unnamed, f"README's Layout does not name: {unnamed}"


def test_what_the_engines_docstrings_name_exists():
    """A docstring that names a file (`verdict.py`) or a folder of the repository (`grader/report/templates/`)
    names one that is there: a module moved or renamed leaves no stale pointer behind."""
    import re
    files = {p.name for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    stale = []
    for path in sorted((ROOT / "grader").rglob("*.py")):
        docs = [ast.get_docstring(n) or "" for n in ast.walk(ast.parse(path.read_text()))
                if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)]
        for doc in docs:
            stale += [f"{path.relative_to(ROOT)}: {name}" for name in re.findall(r"\b\w+\.py\b(?!/)", doc)
                      if name not in files]
            stale += [f"{path.relative_to(ROOT)}: {folder}" for folder in re.findall(r"\bgrader/[\w/]+/", doc)
                      if not (ROOT / folder).is_dir()]
    assert not stale, "docstrings naming what is not there:\n" + "\n".join(stale)
