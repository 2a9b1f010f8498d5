"""A unit of code (a solution cell) as a set of normalised pieces, for the copy report (copies.py).

Copying hides behind cheap edits: new names, new comments and layout, statements in another order,
`np.dot(a, b)` written `a @ b`, a temporary split off or merged in, a loop written another way,
a helper function, dead code. Each unit is parsed, and its syntax tree rewritten so that those edits
change nothing:

- names the code binds itself (parameters, variables, loop variables) become one placeholder; names
  it does not bind (np, the assignment's functions, builtins) and attributes stay;
- numbers become one placeholder; strings (dictionary keys) stay;
- `np.dot`, `np.matmul`, `.dot` become `@`; `np.add`, `np.multiply`, ... their operators; `x += y`
  becomes `x = x + y`; the operands of `+` and `*` are sorted;
- a variable assigned once and read once is put where it is read (temporaries); an assignment
  nobody reads, `pass`, and `if False:` blocks are dropped (dead code);
- `while` loops and `for` loops give the same pieces for their bodies.

The unit is then the set of its pieces: every statement and every expression of some size, each
hashed (BLAKE2b: stable across runs and machines). A set has no order, so reordered statements
match. A helper the unit calls adds its pieces to the unit's. What the release gives every student
(the cell as handed out) is taken away.
"""
from __future__ import annotations

import ast
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grader.core.digest import stable_hash

VERSION = 2  # bump when the normalisation changes: stored fingerprints are then computed again
MIN_NODES = 4  # pieces smaller than this (a name, `x.T`) say nothing about who wrote them
MAX_NODES = 4000  # a unit's syntax tree over this is compared by its lines (an honest answer has a few hundred)

_OPERATORS = {"add": ast.Add, "subtract": ast.Sub, "multiply": ast.Mult, "divide": ast.Div, "power": ast.Pow,
              "true_divide": ast.Div}
_COMMUTATIVE = (ast.Add, ast.Mult)
NAME, NUMBER = "_", 0


@dataclass
class UnitPrint:
    """One unit: its pieces (hash -> the lines of `code` they cover) and its code as handed in."""
    pieces: dict = field(default_factory=dict)
    code: str = ""
    calls: frozenset = frozenset()  # names of functions it calls (to add a helper's pieces)
    defines: frozenset = frozenset()  # names of the functions it defines

    def to_dict(self) -> dict[str, Any]:
        return {"pieces": {format(h, "x"): sorted(lines) for h, lines in self.pieces.items()}, "code": self.code,
                "calls": sorted(self.calls), "defines": sorted(self.defines)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnitPrint:
        return cls({int(h, 16): set(lines) for h, lines in data["pieces"].items()}, data["code"],
                   frozenset(data["calls"]), frozenset(data["defines"]))


@functools.lru_cache(maxsize=4096)
def unit_print(code: str) -> UnitPrint:
    """The unit's pieces; a unit that does not parse is compared by its normalised lines instead. The same
    code (a function left as handed out, say) is fingerprinted once."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _line_print(code)
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        return _line_print(code)  # far beyond any answer: the rewriting's cost is kept bounded on crafted code
    try:
        tree = _normalise(tree)
        pieces: dict[int, set[int]] = {}
        _hash_pieces(tree, pieces)
    except RecursionError:
        return _line_print(code)
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    defines = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    return UnitPrint(pieces, code, frozenset(calls), frozenset(defines))


def _hash_pieces(node, pieces):
    """(hash, size, lines) of `node`, bottom up (each child hashed once: linear in the tree); every statement
    and expression of MIN_NODES or more goes into `pieces` with the source lines it stands for."""
    parts, size, lines = [type(node).__name__], 1, set(getattr(node, "moved_from", ()))
    start = getattr(node, "lineno", None)
    if start is not None:
        lines.update(range(start, (getattr(node, "end_lineno", None) or start) + 1))
    for name, value in ast.iter_fields(node):
        if isinstance(value, ast.AST):
            child, child_size, child_lines = _hash_pieces(value, pieces)
            parts.append(f"{name}={child:x}")
            size += child_size
            lines |= child_lines
        elif isinstance(value, list):
            items = []
            for item in value:
                if isinstance(item, ast.AST):
                    child, child_size, child_lines = _hash_pieces(item, pieces)
                    items.append(f"{child:x}")
                    size += child_size
                    lines |= child_lines
                else:
                    items.append(repr(item))
            parts.append(f"{name}=[{','.join(items)}]")
        elif name not in ("ctx", "type_comment", "kind"):
            parts.append(f"{name}={value!r}")
    digest = stable_hash("(".join(parts))
    if isinstance(node, (ast.stmt, ast.expr)) and not isinstance(node, ast.FunctionDef) and size >= MIN_NODES:
        pieces.setdefault(digest, set()).update(lines)
    return digest, size, lines


def source_lines(code: str) -> list[str]:
    """`code`'s lines as Python numbers them: only \\n, \\r\\n and \\r end a line (str.splitlines() also splits
    at form feeds and U+2028, which would shift every line number after them)."""
    return re.split(r"\r\n|\r|\n", code)


def _line_print(code):
    """Pieces for code that does not parse (or is too big to rewrite): each line without spaces and comments."""
    pieces = {}
    for number, line in enumerate(source_lines(code), 1):
        text = "".join(line.split("#", 1)[0].split())
        if len(text) >= 8:
            pieces.setdefault(stable_hash("line:" + text), set()).add(number)
    return UnitPrint(pieces, code)


# ---------------------------------------------------------------- the rewriting

def _normalise(tree):
    tree = _Canonical().visit(tree)
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        _drop_dead_code(function)
        _inline_temporaries(function)
        _anonymise(function)
    tree = _sort_operands(tree)
    return ast.fix_missing_locations(tree)


def _is_numpy(node):
    return isinstance(node, ast.Name) and node.id in ("np", "numpy")


class _Canonical(ast.NodeTransformer):
    """Equivalent spellings to one form: @ for dot and matmul, operators for np.add & co., x = x + y."""

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        if node.keywords or not isinstance(func, ast.Attribute):
            return node
        if _is_numpy(func.value) and func.attr in ("dot", "matmul") and len(node.args) == 2:
            return ast.copy_location(ast.BinOp(node.args[0], ast.MatMult(), node.args[1]), node)
        if _is_numpy(func.value) and func.attr in _OPERATORS and len(node.args) == 2:
            return ast.copy_location(ast.BinOp(node.args[0], _OPERATORS[func.attr](), node.args[1]), node)
        if func.attr == "dot" and len(node.args) == 1 and not _is_numpy(func.value):
            return ast.copy_location(ast.BinOp(func.value, ast.MatMult(), node.args[0]), node)
        if func.attr == "transpose" and not node.args and not _is_numpy(func.value):
            return ast.copy_location(ast.Attribute(func.value, "T", ast.Load()), node)
        return node

    def visit_Name(self, node):
        if node.id == "numpy":
            node.id = "np"
        return node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        if not isinstance(node.target, ast.Name):
            return node
        load = ast.copy_location(ast.Name(node.target.id, ast.Load()), node.target)
        return ast.copy_location(ast.Assign([node.target], ast.BinOp(load, node.op, node.value)), node)

    def visit_Constant(self, node):
        if isinstance(node.value, (int, float, complex)) and not isinstance(node.value, bool):
            return ast.copy_location(ast.Constant(NUMBER), node)
        return node

    def visit_Expr(self, node):
        self.generic_visit(node)
        if isinstance(node.value, ast.Constant):  # a docstring, or a bare string: a comment
            return None
        return node

    def visit_If(self, node):
        self.generic_visit(node)
        test = node.test
        if isinstance(test, ast.Constant) and not test.value:
            return node.orelse or None  # `if False:` / `if 0:` never runs
        return node

    def visit_Pass(self, node):
        return None

    def visit_While(self, node):
        self.generic_visit(node)
        # A loop is a loop: the body's pieces match whatever the header; the header is a piece of its own.
        return ast.copy_location(ast.For(ast.Name(NAME, ast.Store()), ast.Call(ast.Name("loop", ast.Load()),
                                                                                 [node.test], []),
                                         node.body or [ast.Pass()], [], None), node)


def _names(node, context):
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, context)]


def _drop_dead_code(function):
    """Assignments to plain names that nothing reads."""
    read = set(_names(function, ast.Load))
    for parent in ast.walk(function):
        for name in ("body", "orelse"):
            block = getattr(parent, name, None)
            if not isinstance(block, list):
                continue
            kept = [s for s in block if not (isinstance(s, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id not in read for t in s.targets))]
            if len(kept) != len(block):
                setattr(parent, name, kept or [ast.Pass()])


def _inline_temporaries(function):
    """A name assigned once, by a statement of the function's own block, and read once after it, outside
    any loop: read its value there instead. One pass, with the tree's parents and loops noted first."""
    stores, loads, parent, in_loop = {}, {}, {}, set()
    stack = [(function, False)]
    while stack:
        node, looping = stack.pop()
        if isinstance(node, ast.Name):
            (stores if isinstance(node.ctx, ast.Store) else loads).setdefault(node.id, []).append(node)
            if looping:
                in_loop.add(id(node))
        looping = looping or isinstance(node, (ast.For, ast.While, ast.comprehension))
        for slot, value in ast.iter_fields(node):
            for item in (value if isinstance(value, list) else [value]):
                if isinstance(item, ast.AST):
                    parent[id(item)] = (node, slot, value if isinstance(value, list) else None)
                    stack.append((item, looping))
    params = {a.arg for a in function.args.args + function.args.kwonlyargs}
    for statement in list(function.body):
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            continue
        name = statement.targets[0].id
        if name in params or len(stores.get(name, ())) != 1 or len(loads.get(name, ())) != 1:
            continue
        use = loads[name][0]
        if id(use) in in_loop or not _after(function, statement, use) or id(use) not in parent:
            continue
        value = statement.value
        value.moved_from = range(statement.lineno, (statement.end_lineno or statement.lineno) + 1)
        owner, slot, items = parent[id(use)]
        if items is None:
            setattr(owner, slot, value)
        else:
            items[items.index(use)] = value
        parent[id(value)] = (owner, slot, items)
        function.body.remove(statement)


def _after(function, statement, use):
    return (getattr(use, "lineno", 0), getattr(use, "col_offset", 0)) > (statement.lineno, statement.col_offset)


def _anonymise(function):
    """Names the function binds itself (parameters, assignments, loop and comprehension variables) become one."""
    bound = {a.arg for a in function.args.args + function.args.kwonlyargs + function.args.posonlyargs}
    bound.update(_names(function, ast.Store))
    bound.update(_names(function, ast.Del))
    if function.args.vararg:
        bound.add(function.args.vararg.arg)
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and node.id in bound:
            node.id = NAME
        elif isinstance(node, ast.arg):
            node.arg = NAME
    function.name = NAME


class _SortedOperands(ast.NodeTransformer):
    """a + b + c and c + (b + a) alike: chains of + and of * flattened, their operands in a fixed order.
    Bottom up, so each chain is sorted once."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if not isinstance(node.op, _COMMUTATIVE):
            return node
        op = type(node.op)
        operands, stack = [], [node]
        while stack:
            part = stack.pop()
            if isinstance(part, ast.BinOp) and isinstance(part.op, op):
                stack += [part.right, part.left]
            else:
                operands.append(part)
        operands.sort(key=ast.dump)
        chain = operands[0]
        for part in operands[1:]:
            chain = ast.copy_location(ast.BinOp(chain, op(), part), node)
        return chain


def _sort_operands(tree):
    return _SortedOperands().visit(tree)
