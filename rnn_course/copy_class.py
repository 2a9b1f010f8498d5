"""An evaluation class for the copy report: independent solutions and labelled copies of them.

Independent authors each pick, for each function, one of several approaches written here (a loop
or a stack, a concatenation or split weights, a helper or not, ...), with their own small choices
inside it (⟨a|b⟩ below: the author picks one) and their own names and layout. Some make a typical
mistake. Copies of an author's notebook are then made at the three levels of grader/disguises.py,
and partial copies take two or three functions from an author and write the rest themselves.

Pairs are labelled: a copy and its source, two copies of one source, a partial copy and its source
are copies; every other pair is independent. The units are the four graded functions and the two
optional RNN backward functions (the LSTM backward functions stay as handed out, as for a student
who skipped them).
"""
import random
import re
from dataclasses import dataclass, field

from grader_eval import disguises

UNITS = ["rnn_cell_forward", "rnn_forward", "lstm_cell_forward", "lstm_forward", "rnn_cell_backward",
         "rnn_backward"]
SIGNATURES = {"rnn_cell_forward": "xt, a_prev, parameters", "rnn_forward": "x, a0, parameters",
              "lstm_cell_forward": "xt, a_prev, c_prev, parameters", "lstm_forward": "x, a0, parameters",
              "rnn_cell_backward": "da_next, cache", "rnn_backward": "da, caches"}

# function -> approaches; each a body, with ⟨a|b⟩ for an author's small choices.
APPROACHES = {
    "rnn_cell_forward": [
        """Wax, Waa, Wya = parameters["Wax"], parameters["Waa"], parameters["Wya"]
ba, by = parameters["ba"], parameters["by"]
a_next = np.tanh(⟨Waa @ a_prev + Wax @ xt|Wax @ xt + Waa @ a_prev⟩ + ba)
yt_pred = softmax(Wya @ a_next + by)
cache = ⟨(a_next, a_prev, xt, parameters)|[a_next, a_prev, xt, parameters]⟩
return a_next, yt_pred, cache""",
        """z = np.dot(parameters["Waa"], a_prev) + np.dot(parameters["Wax"], xt) + parameters["ba"]
a_next = np.tanh(z)
logits = np.dot(parameters["Wya"], a_next) + parameters["by"]
⟨yt_pred = softmax(logits)|e = np.exp(logits - logits.max(axis=0, keepdims=True))
yt_pred = e / e.sum(axis=0, keepdims=True)⟩
return a_next, yt_pred, (a_next, a_prev, xt, parameters)""",
        """W = ⟨np.hstack((parameters["Waa"], parameters["Wax"]))|np.concatenate((parameters["Waa"], parameters["Wax"]), axis=1)⟩
stacked = ⟨np.vstack((a_prev, xt))|np.concatenate((a_prev, xt), axis=0)⟩
a_next = np.tanh(W @ stacked + parameters["ba"])
yt_pred = softmax(parameters["Wya"] @ a_next + parameters["by"])
return a_next, yt_pred, (a_next, a_prev, xt, parameters)""",
        """p = parameters
hidden = np.einsum("ij,jk->ik", p["Waa"], a_prev) + np.einsum("ij,jk->ik", p["Wax"], xt)
a_next = np.tanh(hidden + p["ba"])
scores = np.einsum("ij,jk->ik", p["Wya"], a_next) + p["by"]
⟨yt_pred = softmax(scores)|yt_pred = np.exp(scores) / np.sum(np.exp(scores), axis=0)⟩
cache = (a_next, a_prev, xt, p)
return a_next, yt_pred, cache""",
        """n_a = a_prev.shape[0]
pre = np.matmul(parameters["Wax"], xt)
pre = pre + np.matmul(parameters["Waa"], a_prev)
pre += parameters["ba"]⟨| * np.ones((1, xt.shape[1]))⟩
a_next = np.tanh(pre)
out = np.matmul(parameters["Wya"], a_next) + parameters["by"]
yt_pred = softmax(out)
assert a_next.shape[0] == n_a
return a_next, yt_pred, (a_next, a_prev, xt, parameters)""",
    ],
    "rnn_forward": [
        """caches = []
⟨n_x, m, T_x = x.shape|m, T_x = x.shape[1], x.shape[2]|_, m, T_x = x.shape⟩
⟨n_y, n_a = parameters["Wya"].shape|n_a = a0.shape[0]
n_y = parameters["Wya"].shape[0]|n_a, n_y = parameters["Waa"].shape[0], parameters["by"].shape[0]⟩
a = np.zeros(⟨(n_a, m, T_x)|[n_a, m, T_x]⟩)
y_pred = np.zeros(⟨(n_y, m, T_x)|[n_y, m, T_x]⟩)
a_next = ⟨a0|a0.copy()|np.copy(a0)⟩
for t in ⟨range(T_x)|range(0, T_x)|np.arange(T_x)⟩:
    a_next, yt_pred, cache = rnn_cell_forward(x[:, :, t], a_next, parameters)
    a[:, :, t] = a_next
    y_pred[:, :, t] = yt_pred
    caches.append(cache)
return a, y_pred, (caches, x)""",
        """states, outputs, caches = [], [], []
h = ⟨a0|a0.copy()⟩
for t in range(⟨x.shape[2]|x.shape[-1]|np.shape(x)[2]⟩):
    h, y_t, cache = rnn_cell_forward(x[⟨:, :, t|..., t⟩], h, parameters)
    states.append(h)
    outputs.append(y_t)
    caches.append(cache)
a = np.stack(states, axis=⟨2|-1⟩)
y_pred = np.stack(outputs, axis=⟨2|-1⟩)
return a, y_pred, (caches, x)""",
        """T_x = x.shape[2]
a = np.zeros((a0.shape[0], x.shape[1], T_x))
y_pred = np.zeros((parameters["by"].shape[0], x.shape[1], T_x))
caches = []
t = 0
state = a0
while t < T_x:
    state, y_t, c = rnn_cell_forward(x[:, :, t], state, parameters)
    a[:, :, t], y_pred[:, :, t] = state, y_t
    caches.append(c)
    t += 1
return a, y_pred, (caches, x)""",
        """steps = np.moveaxis(x, 2, 0)
a_list, y_list, caches = [], [], []
prev = a0
for xt in steps:
    prev, yt, cache = rnn_cell_forward(xt, prev, parameters)
    a_list.append(prev)
    y_list.append(yt)
    caches.append(cache)
a = np.moveaxis(np.array(a_list), 0, 2)
y_pred = np.moveaxis(np.array(y_list), 0, 2)
return a, y_pred, (caches, x)""",
    ],
    "lstm_cell_forward": [
        """concat = ⟨np.concatenate((a_prev, xt), axis=0)|np.vstack((a_prev, xt))|np.concatenate([a_prev, xt])|np.r_[a_prev, xt]⟩
ft = sigmoid(parameters["Wf"] @ concat + parameters["bf"])
it = sigmoid(parameters["Wi"] @ concat + parameters["bi"])
cct = np.tanh(parameters["Wc"] @ concat + parameters["bc"])
c_next = ⟨ft * c_prev + it * cct|it * cct + ft * c_prev⟩
ot = sigmoid(parameters["Wo"] @ concat + parameters["bo"])
a_next = ot * np.tanh(c_next)
⟨yt_pred = softmax(parameters["Wy"] @ a_next + parameters["by"])|z_y = parameters["Wy"] @ a_next + parameters["by"]
yt_pred = np.exp(z_y - np.max(z_y, axis=0)) / np.sum(np.exp(z_y - np.max(z_y, axis=0)), axis=0)⟩
cache = ⟨(a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)|[a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters]⟩
return a_next, c_next, yt_pred, cache""",
        """n_a = a_prev.shape[0]
W = np.vstack([parameters["Wf"], parameters["Wi"], parameters["Wc"], parameters["Wo"]])
b = np.vstack(⟨[parameters["bf"], parameters["bi"], parameters["bc"], parameters["bo"]]|[parameters["b" + k] for k in "fico"]⟩)
z = W @ ⟨np.vstack([a_prev, xt])|np.concatenate((a_prev, xt))⟩ + b
ft, it = sigmoid(z[:n_a]), sigmoid(z[n_a:2 * n_a])
cct, ot = np.tanh(z[2 * n_a:3 * n_a]), sigmoid(z[3 * n_a:])
c_next = ft * c_prev + it * cct
a_next = ot * np.tanh(c_next)
yt_pred = softmax(parameters["Wy"] @ a_next + parameters["by"])
return a_next, c_next, yt_pred, (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)""",
        """def gate(name, activation):
    return activation(np.dot(parameters["W" + name], np.concatenate([a_prev, xt])) + parameters["b" + name])
ft = gate("f", sigmoid)
it = gate("i", sigmoid)
ot = gate("o", sigmoid)
cct = gate("c", np.tanh)
c_next = np.multiply(ft, c_prev) + np.multiply(it, cct)
a_next = np.multiply(ot, np.tanh(c_next))
yt_pred = softmax(np.dot(parameters["Wy"], a_next) + parameters["by"])
return a_next, c_next, yt_pred, (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)""",
        """n_a = a_prev.shape[0]
def part(W):
    return W[:, :n_a] @ a_prev + W[:, n_a:] @ xt
forget = sigmoid(part(parameters["Wf"]) + parameters["bf"])
update = sigmoid(part(parameters["Wi"]) + parameters["bi"])
candidate = np.tanh(part(parameters["Wc"]) + parameters["bc"])
output = sigmoid(part(parameters["Wo"]) + parameters["bo"])
c_next = forget * c_prev + update * candidate
a_next = output * np.tanh(c_next)
⟨yt_pred = softmax(parameters["Wy"] @ a_next + parameters["by"])|scores = parameters["Wy"] @ a_next + parameters["by"]
yt_pred = np.exp(scores) / np.exp(scores).sum(axis=0)⟩
return a_next, c_next, yt_pred, (a_next, c_next, a_prev, c_prev, forget, update, candidate, output, xt, parameters)""",
    ],
    "lstm_forward": [
        """caches = []
⟨n_x, m, T_x = x.shape|m, T_x = x.shape[1], x.shape[2]|_, m, T_x = x.shape⟩
⟨n_y, n_a = parameters["Wy"].shape|n_a = a0.shape[0]
n_y = parameters["Wy"].shape[0]⟩
a = np.zeros(⟨(n_a, m, T_x)|[n_a, m, T_x]⟩)
c = np.zeros(⟨(n_a, m, T_x)|a.shape|np.shape(a)⟩)
y = np.zeros(⟨(n_y, m, T_x)|[n_y, m, T_x]⟩)
a_next = ⟨a0|a0.copy()⟩
c_next = np.zeros(⟨(n_a, m)|a0.shape|np.shape(a0)⟩)
for t in ⟨range(T_x)|range(0, T_x)⟩:
    a_next, c_next, yt, cache = lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)
    a[:, :, t] = a_next
    c[:, :, t] = c_next
    y[:, :, t] = yt
    caches.append(cache)
return a, y, c, (caches, x)""",
        """h, mem = ⟨a0, np.zeros_like(a0)|a0, np.zeros(a0.shape)|a0.copy(), 0 * a0⟩
hs, ys, cs, caches = [], [], [], []
for t in range(⟨x.shape[-1]|x.shape[2]⟩):
    h, mem, out, cache = lstm_cell_forward(x[..., t], h, mem, parameters)
    hs.append(h)
    cs.append(mem)
    ys.append(out)
    caches.append(cache)
return np.stack(hs, axis=⟨2|-1⟩), np.stack(ys, axis=⟨2|-1⟩), np.stack(cs, axis=⟨2|-1⟩), (caches, x)""",
        """T_x = x.shape[2]
shape = a0.shape + (T_x,)
a, c = np.empty(shape), np.empty(shape)
y = np.empty((parameters["Wy"].shape[0], a0.shape[1], T_x))
caches = []
state, memory = a0, np.zeros(a0.shape)
t = 0
while t < T_x:
    state, memory, y[:, :, t], cache = lstm_cell_forward(x[:, :, t], state, memory, parameters)
    a[:, :, t] = state
    c[:, :, t] = memory
    caches.append(cache)
    t = t + 1
return a, y, c, (caches, x)""",
    ],
    "rnn_cell_backward": [
        """⟨(a_next, a_prev, xt, parameters) = cache|a_next, a_prev, xt, parameters = cache[0], cache[1], cache[2], cache[3]⟩
dz = ⟨(1 - a_next ** 2)|(1 - np.square(a_next))|(1 - np.power(a_next, 2))⟩ * da_next
dxt = ⟨parameters["Wax"].T|np.transpose(parameters["Wax"])⟩ @ dz
dWax = dz @ ⟨xt.T|np.transpose(xt)⟩
da_prev = ⟨parameters["Waa"].T|np.transpose(parameters["Waa"])⟩ @ dz
dWaa = dz @ ⟨a_prev.T|np.transpose(a_prev)⟩
dba = ⟨np.sum(dz, axis=1, keepdims=True)|dz.sum(axis=1, keepdims=True)⟩
return {"dxt": dxt, "da_prev": da_prev, "dWax": dWax, "dWaa": dWaa, "dba": dba}""",
        """a_next, a_prev, xt, p = cache
dtanh = da_next * ⟨(1 - np.square(a_next))|(1 - a_next ** 2)|(1.0 - a_next * a_next)⟩
gradients = {}
gradients["dxt"] = np.dot(⟨p["Wax"].T|np.transpose(p["Wax"])⟩, dtanh)
gradients["dWax"] = np.dot(dtanh, xt.T)
gradients["da_prev"] = np.dot(p["Waa"].T, dtanh)
gradients["dWaa"] = np.dot(dtanh, a_prev.T)
gradients["dba"] = ⟨dtanh.sum(axis=1).reshape(-1, 1)|np.sum(dtanh, 1)[:, None]⟩
return gradients""",
        """a_next = cache[0]
a_prev = cache[1]
xt = cache[2]
Wax, Waa = cache[3]["Wax"], cache[3]["Waa"]
local = da_next - da_next * a_next * a_next
return dict(dxt=np.transpose(Wax) @ local, da_prev=np.transpose(Waa) @ local, dWax=local @ np.transpose(xt),
            dWaa=local @ np.transpose(a_prev), dba=np.sum(local, axis=1, keepdims=True))""",
    ],
    "rnn_backward": [
        """⟨(step_caches, x) = caches|step_caches, x = caches[0], caches[1]⟩
(a1, a0, x1, parameters) = step_caches[0]
⟨n_a, m, T_x = da.shape|T_x = da.shape[2]
n_a, m = da.shape[0], da.shape[1]⟩
n_x, m = x1.shape
dx = np.zeros(⟨(n_x, m, T_x)|x.shape|np.shape(x)⟩)
dWax = np.zeros(⟨(n_a, n_x)|parameters["Wax"].shape⟩)
dWaa = np.zeros(⟨(n_a, n_a)|parameters["Waa"].shape⟩)
dba = np.zeros(⟨(n_a, 1)|parameters["ba"].shape⟩)
da_prevt = np.zeros(⟨(n_a, m)|a0.shape|da[:, :, 0].shape⟩)
for t in ⟨reversed(range(T_x))|range(T_x - 1, -1, -1)|range(T_x)[::-1]⟩:
    step = rnn_cell_backward(da[:, :, t] + da_prevt, step_caches[t])
    dx[:, :, t] = step["dxt"]
    da_prevt = step["da_prev"]
    dWax += step["dWax"]
    dWaa += step["dWaa"]
    dba += step["dba"]
return {"dx": dx, "da0": da_prevt, "dWax": dWax, "dWaa": dWaa, "dba": dba}""",
        """steps, x = caches
T_x = ⟨da.shape[2]|x.shape[2]|len(steps)⟩
dx = ⟨np.zeros_like(x)|np.zeros(x.shape)⟩
totals = {"dWax": 0, "dWaa": 0, "dba": 0}
carry = ⟨np.zeros_like(da[:, :, 0])|np.zeros(da.shape[:2])⟩
for t in ⟨range(T_x - 1, -1, -1)|reversed(range(T_x))⟩:
    g = rnn_cell_backward(da[:, :, t] + carry, steps[t])
    dx[:, :, t] = g["dxt"]
    carry = g["da_prev"]
    for key in totals:
        totals[key] = totals[key] + g[key]
return {"dx": dx, "da0": carry, **totals}""",
        """steps, x = caches
T_x = x.shape[2]
grads = []
upstream = np.zeros(da.shape[:2])
t = T_x - 1
while t >= 0:
    g = rnn_cell_backward(da[:, :, t] + upstream, steps[t])
    grads.append(g)
    upstream = g["da_prev"]
    t -= 1
grads = grads[::-1]
return {"dx": np.stack([g["dxt"] for g in grads], axis=2), "da0": upstream,
        "dWax": sum(g["dWax"] for g in grads), "dWaa": sum(g["dWaa"] for g in grads),
        "dba": sum(g["dba"] for g in grads)}""",
    ],
}

# Typical mistakes an author may make: (function, text in the approach, replacement), applied if found.
MISTAKES = [
    ("rnn_cell_forward", "np.tanh(", "sigmoid("),
    ("rnn_cell_forward", "+ ba)", ")"),
    ("rnn_forward", "rnn_cell_forward(x[:, :, t], a_next,", "rnn_cell_forward(x[:, :, t], a0,"),
    ("lstm_cell_forward", "cct = np.tanh(", "cct = sigmoid("),
    ("lstm_cell_forward", "a_next = ot * np.tanh(c_next)", "a_next = ot * c_next"),
    ("lstm_forward", "lstm_cell_forward(x[:, :, t], a_next, c_next,", "lstm_cell_forward(x[:, :, t], a_next, "
                                                                        "np.zeros_like(a0),"),
    ("rnn_cell_backward", "(1 - a_next ** 2)", "(1 - a_next)"),
    ("rnn_backward", "da[:, :, t] + da_prevt", "da[:, :, t]"),
    ("rnn_backward", "da[:, :, t] + carry", "da[:, :, t]"),
]


USUAL = 0.5  # the share of independent authors who write a function the usual way


@dataclass
class Student:
    name: str
    functions: dict                      # unit -> the code of its cell (a function definition)
    source: str = ""                     # whose notebook it copies ("" for an independent author)
    level: str = ""                      # disguises.LEVELS, or "partial"
    copied: tuple = ()                   # the units copied (all, or two or three for a partial copy)
    mistakes: list = field(default_factory=list)


def _choose(body, rng):
    return re.sub(r"⟨([^⟨⟩]*)⟩", lambda m: rng.choice(m.group(1).split("|")), body)


def author(name, rng, mistake_rate=0.35):
    """An independent student: an approach per function, their own choices, names and mistakes."""
    functions, mistakes = {}, []
    for unit in UNITS:
        # Most students follow the hints to the usual answer (the first approach); the rest spread out.
        approaches = APPROACHES[unit]
        body = _choose(approaches[0] if rng.random() < USUAL else rng.choice(approaches[1:]), rng)
        possible = [m for m in MISTAKES if m[0] == unit and m[1] in body]
        if possible and rng.random() < mistake_rate / 2:
            _, old, new = rng.choice(possible)
            body = body.replace(old, new, 1)
            mistakes.append(unit)
        code = f"def {unit}({SIGNATURES[unit]}):\n" + "".join(f"    {line}\n" for line in body.splitlines())
        functions[unit] = disguises.disguise(code, "renamed", rng)  # the author's own names and layout
    return Student(name, functions, mistakes=mistakes)


def evaluation_class(originals=30, per_level=12, partial=9, seed=2026):
    """(students, copy pairs): `originals` independent authors, `per_level` copies at each disguise level,
    `partial` partial copies (the rest of each written by an author not otherwise in the class)."""
    rng = random.Random(seed)
    students = [author(f"own_{i:02d}", rng) for i in range(originals)]
    copies = []
    for level in disguises.LEVELS:
        for i in range(per_level):
            source = rng.choice(students[:originals])
            functions = {u: disguises.disguise(code, level, rng) for u, code in source.functions.items()}
            copies.append(Student(f"{level}_{i:02d}", functions, source.name, level, tuple(UNITS)))
    for i in range(partial):
        source = rng.choice(students[:originals])
        own = author(f"fresh_{i:02d}", rng)
        taken = tuple(rng.sample(UNITS, rng.choice([2, 3])))
        functions = {u: disguises.disguise(source.functions[u], "restructured", rng) if u in taken
                     else own.functions[u] for u in UNITS}
        copies.append(Student(f"partial_{i:02d}", functions, source.name, "partial", taken))
    students += copies
    return students, copy_pairs(students)


def copy_pairs(students):
    """{(a, b): level} for every pair that is a copy (a < b); every other pair is independent."""
    pairs = {}
    by_source = {}
    for s in students:
        if s.source:
            pairs[tuple(sorted((s.name, s.source)))] = s.level
            by_source.setdefault(s.source, []).append(s)
    for group in by_source.values():
        for i, one in enumerate(group):
            for other in group[i + 1:]:
                shared = set(one.copied) & set(other.copied)
                if shared:
                    level = "partial" if "partial" in (one.level, other.level) else \
                        max(one.level, other.level, key=disguises.LEVELS.index)
                    pairs[tuple(sorted((one.name, other.name)))] = level
    return pairs
