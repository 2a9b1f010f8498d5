"""How copiers hide a copy, as code transformations: to build evaluation classes for the copy report.

Three levels, each adding to the one before:
1. `renamed`: every name the code binds is renamed, comments dropped or changed, the layout redone;
2. `restructured`: independent statements reordered, `np.dot(a, b)` and `a @ b` swapped, temporaries
   split off or merged in;
3. `disguised`: `for` loops written as `while` loops, an expression moved into a helper function, dead
   code added.

Every transformation keeps what the code computes (the evaluation checks it on real inputs).
"""
import ast

LEVELS = ("renamed", "restructured", "disguised")

_WORDS = ["val", "tmp", "res", "out", "acc", "cur", "prev", "nxt", "mat", "vec", "grad", "state", "hid", "buf",
          "item", "part", "piece", "step", "node", "term", "comp", "elem", "data", "res2", "aux", "work"]


def disguise(code, level, rng):
    """`code` (a cell: functions) with the disguises of `level` and those below it."""
    tree = ast.parse(code)
    depth = LEVELS.index(level) + 1
    if depth >= 2:
        _reorder(tree, rng)
        _swap_products(tree, rng)
        _temporaries(tree, rng)
    if depth >= 3:
        _loops_to_while(tree, rng)
        _extract_helper(tree, rng)
        _dead_code(tree, rng)
    _rename(tree, rng)
    ast.fix_missing_locations(tree)
    text = ast.unparse(tree)
    return _restyle(text, rng)


def _bound_names(function):
    names = {a.arg for a in function.args.args}
    names.update(n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return names


def _rename(tree, rng):
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    for function in functions:
        bound = sorted(_bound_names(function))
        fresh = rng.sample(_WORDS, len(_WORDS))
        mapping = {name: f"{fresh[i % len(fresh)]}{i // len(fresh) or ''}_{rng.randint(0, 9)}"
                   for i, name in enumerate(bound)}
        for node in ast.walk(function):
            if isinstance(node, ast.Name) and node.id in mapping:
                node.id = mapping[node.id]
            elif isinstance(node, ast.arg) and node.arg in mapping:
                node.arg = mapping[node.arg]


def _restyle(text, rng):
    """Layout and comments: a copier's own (ast.unparse already dropped the original's)."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        indent = line[:len(line) - len(line.lstrip())]
        if stripped.startswith(("for ", "while ")) and rng.random() < 0.5:
            lines.append(f"{indent}# loop over the steps")
        if stripped.startswith("return") and rng.random() < 0.5:
            lines.append(f"{indent}# done")
        lines.append(line.replace(", ", ",") if rng.random() < 0.3 else line)
    return "\n".join(lines) + "\n"


def _blocks(tree):
    for node in ast.walk(tree):
        for name in ("body", "orelse"):
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block


def _reads_writes(statement):
    reads = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    writes = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    if isinstance(statement, ast.Expr) or any(isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store)
                                              for n in ast.walk(statement)):
        writes.add("*memory*")  # a call or an item assignment: keep its place among those
    if any(isinstance(n, ast.Call) for n in ast.walk(statement)):
        reads.add("*memory*")
    return reads, writes


def _independent(first, second):
    r1, w1 = _reads_writes(first)
    r2, w2 = _reads_writes(second)
    simple = (ast.Assign, ast.AugAssign, ast.Expr)
    return (isinstance(first, simple) and isinstance(second, simple)
            and not (w1 & (r2 | w2)) and not (w2 & r1))


def _reorder(tree, rng):
    for block in list(_blocks(tree)):
        for i in range(len(block) - 1):
            if rng.random() < 0.6 and _independent(block[i], block[i + 1]):
                block[i], block[i + 1] = block[i + 1], block[i]


class _Products(ast.NodeTransformer):
    def __init__(self, to_dot):
        self.to_dot = to_dot

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if self.to_dot and isinstance(node.op, ast.MatMult):
            return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "dot", ast.Load()), [node.left, node.right], [])
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        if (not self.to_dot and isinstance(func, ast.Attribute) and func.attr in ("dot", "matmul")
                and isinstance(func.value, ast.Name) and func.value.id == "np" and len(node.args) == 2):
            return ast.BinOp(node.args[0], ast.MatMult(), node.args[1])
        return node


def _swap_products(tree, rng):
    uses_at = any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult) for n in ast.walk(tree))
    _Products(to_dot=uses_at).visit(tree)


def _temporaries(tree, rng):
    """Split the right operand of a binary operation in an assignment into a temporary of its own."""
    counter = 0
    for block in list(_blocks(tree)):
        i = 0
        while i < len(block):
            statement = block[i]
            if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.BinOp)
                    and isinstance(statement.value.left, (ast.BinOp, ast.Call)) and rng.random() < 0.7):
                counter += 1
                name = f"part_{counter}"
                block.insert(i, ast.Assign([ast.Name(name, ast.Store())], statement.value.left))
                statement.value.left = ast.Name(name, ast.Load())
                i += 1
            i += 1


def _loops_to_while(tree, rng):
    for block in list(_blocks(tree)):
        for i, statement in enumerate(list(block)):
            if not (isinstance(statement, ast.For) and isinstance(statement.target, ast.Name)
                    and isinstance(statement.iter, ast.Call) and isinstance(statement.iter.func, ast.Name)
                    and statement.iter.func.id == "range" and len(statement.iter.args) == 1
                    and not statement.orelse and rng.random() < 0.8):
                continue
            index = statement.target.id
            limit = statement.iter.args[0]
            start = ast.Assign([ast.Name(index, ast.Store())], ast.Constant(0))
            step = ast.AugAssign(ast.Name(index, ast.Store()), ast.Add(), ast.Constant(1))
            loop = ast.While(ast.Compare(ast.Name(index, ast.Load()), [ast.Lt()], [limit]),
                             statement.body + [step], [])
            position = block.index(statement)
            block[position:position + 1] = [start, loop]


def _extract_helper(tree, rng):
    """Move the first call argument that is an expression of some size into a helper function."""
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    for function in functions:
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.BinOp):
                expression = node.args[0]
                names = sorted({n.id for n in ast.walk(expression) if isinstance(n, ast.Name)
                                and isinstance(n.ctx, ast.Load) and n.id not in ("np", "sigmoid", "softmax")})
                if not names or rng.random() < 0.3:
                    continue
                helper = f"_combine_{function.name}"
                tree.body.insert(tree.body.index(function), ast.FunctionDef(
                    name=helper, args=ast.arguments(posonlyargs=[], args=[ast.arg(n) for n in names], kwonlyargs=[],
                                                    kw_defaults=[], defaults=[]),
                    body=[ast.Return(expression)], decorator_list=[]))
                node.args[0] = ast.Call(ast.Name(helper, ast.Load()), [ast.Name(n, ast.Load()) for n in names], [])
                break


def _dead_code(tree, rng):
    for function in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        body = function.body
        where = rng.randint(0, max(0, len(body) - 1))
        body.insert(where, ast.Assign([ast.Name("debug_unused", ast.Store())], ast.Constant(rng.randint(1, 99))))
        if rng.random() < 0.5:
            body.insert(rng.randint(0, len(body) - 1),
                        ast.If(ast.Constant(False), [ast.Expr(ast.Call(ast.Name("print", ast.Load()),
                                                                        [ast.Constant("checking")], []))], []))
