"""The data format between the grader and a sandboxed student process: JSON, never pickle.

Values are plain data only: None, bool, int, float, complex, Fraction, Decimal, str, bytes, range, list,
tuple, set, frozenset, dict (any keys of these kinds), and numpy arrays (and numpy
scalars) of numeric or boolean dtype; each arrives as the same value of the same type.
A subclass of dict, list or tuple (a Counter, a namedtuple) arrives as the plain type,
marked as `inexact`. Whatever else a student's function returns (a generator, an object
of their own, a string over 10,000 characters) arrives as an `Unsupported` marker, which
no test accepts. Nothing is cut or dropped silently: see `exact`.

`encode(value, inputs)` also records sharing: a part of the value that *is* one of
the inputs (say a cache that keeps the `a_prev` it was given), or that is an earlier
part of the value, is sent as a reference, so that a test's `cache[1] is a_prev`
means the same on both sides.

`decode` is the grader's side and trusts nothing: every field is checked, sizes and
depth are capped, and anything malformed raises WireError. A reference to an earlier
part may only name an array, and every reference counts the full size of what it
names: shared parts cannot make a small message decode into a huge value.
"""
from __future__ import annotations

import base64
import decimal
import fractions
import json
from typing import Any

import numpy as np

from grader.core.plain_text import valid_text

MAX_DEPTH = 32
MAX_NODES = 100_000
MAX_WEIGHT = 64 * 1024 * 1024  # bytes of array data a decoded value may reach, shared parts counted each time
MAX_STRING = 10_000
MAX_INT_DIGITS = 4000  # below Python's own limit for turning an int into text (4300 digits)
MAX_INT_BITS = 13_280  # 4000 decimal digits
MAX_DECIMAL = 200      # characters of a Decimal's text
DTYPES = {"<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1", "<c16", "<c8"}


class WireError(ValueError):
    """Data from a student's process that is not in the expected format."""


class Unsupported:
    """Stands in for a value of a type the format does not carry."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<unsupported {self.type_name}>"


# ---------------------------------------------------------------- encoding (either side)

def _array(value):
    array = np.asarray(value)  # not ascontiguousarray, which makes a 0-d array (a numpy scalar's) 1-d
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return {"k": "array", "dtype": array.dtype.str, "shape": list(array.shape),
            "data": base64.b64encode(array.tobytes()).decode("ascii")}


def encode(value: object, inputs: object = ()) -> dict[str, Any]:
    """`value` as JSON-ready data; parts that are (by identity) one of `inputs` become references."""
    known: dict[int, list[Any]] = {}  # id of a part -> its path
    _index(inputs, ["in"], known)
    return _encode(value, ["out"], known, 0)


def _index(value, path, known):
    if isinstance(value, (list, tuple, dict, np.ndarray)) and id(value) not in known:
        known[id(value)] = path
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str):
                    _index(item, path + [key], known)
        elif not isinstance(value, np.ndarray):
            for i, item in enumerate(value):
                _index(item, path + [i], known)


def _encode(value, path, known, depth):
    if depth > MAX_DEPTH:
        return {"k": "unsupported", "type": "too deeply nested"}
    if id(value) in known and isinstance(value, (list, tuple, dict, np.ndarray)):
        return {"k": "ref", "path": known[id(value)]}
    if value is None or type(value) is bool:
        return {"k": "const", "v": value}
    if type(value) is int:
        if value.bit_length() > MAX_INT_BITS:
            return {"k": "unsupported", "type": "int of over 4000 digits"}
        return {"k": "int", "v": str(value)}
    if type(value) is float:
        return {"k": "float", "v": value.hex()}
    if type(value) is complex:
        return {"k": "complex", "v": [value.real.hex(), value.imag.hex()]}
    if type(value) is fractions.Fraction:
        if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_INT_BITS:
            return {"k": "unsupported", "type": "Fraction of over 4000 digits"}
        return {"k": "fraction", "v": [str(value.numerator), str(value.denominator)]}
    if type(value) is decimal.Decimal:
        text = str(value)
        if len(text) > MAX_DECIMAL:
            return {"k": "unsupported", "type": f"Decimal of over {MAX_DECIMAL} characters"}
        return {"k": "decimal", "v": text}
    if type(value) is str:
        if len(value) > MAX_STRING:
            return {"k": "unsupported", "type": f"str of over {MAX_STRING} characters"}
        return {"k": "str", "v": value}
    if type(value) is bytes:
        if len(value) > MAX_STRING:
            return {"k": "unsupported", "type": f"bytes of over {MAX_STRING}"}
        return {"k": "bytes", "v": base64.b64encode(value).decode("ascii")}
    if type(value) is range:
        if max(abs(value.start), abs(value.stop), abs(value.step)).bit_length() > MAX_INT_BITS:
            return {"k": "unsupported", "type": "range of over 4000 digits"}
        return {"k": "range", "v": [_encode(value.start, path, known, depth + 1), _encode(value.stop, path, known,
                depth + 1), _encode(value.step, path, known, depth + 1)]}
    if type(value) in (set, frozenset):
        return {"k": type(value).__name__, "v": [_encode(item, path + [i], known, depth + 1)
                                                for i, item in enumerate(value)]}
    if type(value) is np.ndarray and value.dtype.str.replace(">", "<") in DTYPES:
        known[id(value)] = path
        return _array(value)
    if isinstance(value, np.generic) and type(value).__module__ == "numpy" and \
            np.dtype(type(value)).str.replace(">", "<") in DTYPES:
        return dict(_array(np.asarray(value)), scalar=True)
    for plain in (list, tuple, dict):  # a subclass (Counter, namedtuple) as the plain type, marked inexact
        if isinstance(value, plain) and type(value) is not plain:
            try:
                return dict(_encode(plain(value), path, known, depth), was=type(value).__name__[:100])
            except Exception:  # noqa: BLE001 -- a subclass that will not copy: it does not travel
                return {"k": "unsupported", "type": type(value).__name__[:100]}
    if type(value) in (list, tuple):  # a container shared within the value is sent again, as a copy
        return {"k": type(value).__name__, "v": [_encode(item, path + [i], known, depth + 1)
                                                for i, item in enumerate(value)]}
    if type(value) is dict:
        return {"k": "dict", "v": [[key, _encode(item, path + [key], known, depth + 1)] if type(key) is str else
                                   [_encode(key, path + [f"\0k{i}"], {}, depth + 1), _encode(item, path + [f"\0{i}"], known,
                                                                               depth + 1)]
                                   for i, (key, item) in enumerate(value.items())]}
    return {"k": "unsupported", "type": type(value).__name__[:100]}


def _parts(node, limit=MAX_NODES):
    """Every object of a wire node (untrusted: walked without recursion, at most `limit` parts), then None when
    there were more."""
    stack, seen = [node], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            yield None
            return
        if isinstance(item, dict):
            yield item
            stack.extend(item.get("v") if isinstance(item.get("v"), list) else ())
        elif isinstance(item, list):
            stack.extend(item)


def unsupported(node: object) -> str | None:
    """The type name of the first part of `node` that did not travel (an `Unsupported` marker), or None."""
    return next((valid_text(str(part.get("type", "?"))[:100]) for part in _parts(node)
                 if part is not None and part.get("k") == "unsupported"), None)


_INEXACT = ("unsupported", "set", "frozenset")  # sets: their order may differ between processes


def exact(node: object) -> bool:
    """True when `node` (a student's output, untrusted) decodes into exactly what the student's function
    returned: nothing unsupported, no subclass sent as its plain type, no set (whose order of iteration can
    differ between two processes). Only then can a check that fails on it here contradict the notebook."""
    return not any(part is None or part.get("k") in _INEXACT or "was" in part for part in _parts(node))


def dumps(message: object) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode()


# ---------------------------------------------------------------- decoding (the grader's side)

def loads(data: bytes, max_bytes: int) -> dict[str, Any]:
    """A JSON message from untrusted bytes: an object, at most `max_bytes` long, no NaN tokens."""
    if len(data) > max_bytes:
        raise WireError(f"message of {len(data)} bytes, over the cap of {max_bytes}")
    try:
        message = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WireError(f"not a JSON message ({type(error).__name__})") from None
    if not isinstance(message, dict):
        raise WireError("a message must be a JSON object")
    return message


def _no_constant(name):
    raise ValueError(f"{name} is not allowed")


def decode(node: object, inputs: object = ()) -> Any:
    """The value `node` describes; references to "in" resolve into `inputs` (the caller's own objects)."""
    state = {"nodes": 0, "out": {}, "weight": 0}
    return _decode(node, ["out"], inputs, state, 0)


def _weigh(state, amount):
    state["weight"] += amount
    _want(state["weight"] <= MAX_WEIGHT, "the value is too large once its shared parts are counted")


def _weight_of(value, depth=0):
    """Bytes of array data in `value` (one of the caller's own inputs), counted as a tree."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if depth > MAX_DEPTH:
        return 0
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return sum(_weight_of(item, depth + 1) for item in value) + 8 * len(value)
    return 8


def _want(condition, what):
    if not condition:
        raise WireError(what)


def _decode(node, path, inputs, state, depth):
    state["nodes"] += 1
    _want(state["nodes"] <= MAX_NODES, "too many values")
    _want(depth <= MAX_DEPTH, "nested too deeply")
    _want(isinstance(node, dict) and isinstance(node.get("k"), str), "a value must be an object with a kind")
    kind = node["k"]
    if kind == "const":
        _want(node.get("v") is None or isinstance(node.get("v"), bool), "bad constant")
        return node["v"]
    if kind == "int":
        text = node.get("v")
        _want(isinstance(text, str) and 0 < len(text) <= MAX_INT_DIGITS + 1 and text.lstrip("-").isdigit()
              and text.isascii(), "bad integer")
        return int(text)
    if kind == "float":
        return _float(node.get("v"))
    if kind == "fraction":
        parts = node.get("v")
        _want(isinstance(parts, list) and len(parts) == 2 and all(
            isinstance(p, str) and 0 < len(p) <= MAX_INT_DIGITS + 1 and p.isascii() and p.lstrip("-").isdigit()
            for p in parts) and int(parts[1]) > 0, "bad fraction")
        return fractions.Fraction(int(parts[0]), int(parts[1]))
    if kind == "decimal":
        text = node.get("v")
        _want(isinstance(text, str) and 0 < len(text) <= MAX_DECIMAL and text.isascii(), "bad decimal")
        try:
            return decimal.Decimal(text)
        except decimal.InvalidOperation:
            raise WireError("bad decimal") from None
    if kind == "complex":
        parts = node.get("v")
        _want(isinstance(parts, list) and len(parts) == 2, "bad complex")
        return complex(_float(parts[0]), _float(parts[1]))
    if kind == "str":
        _want(isinstance(node.get("v"), str) and len(node["v"]) <= MAX_STRING, "bad string")
        return valid_text(node["v"])
    if kind == "bytes":
        _want(isinstance(node.get("v"), str) and len(node["v"]) <= 2 * MAX_STRING, "bad bytes")
        try:
            return base64.b64decode(node["v"].encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise WireError("bytes are not base64") from None
    if kind == "range":
        parts = node.get("v")
        _want(isinstance(parts, list) and len(parts) == 3, "bad range")
        ends = [_decode(part, path, inputs, state, depth + 1) for part in parts]
        _want(all(type(end) is int for end in ends) and ends[2] != 0, "bad range")
        return range(*ends)
    if kind in ("set", "frozenset"):
        items = node.get("v")
        _want(isinstance(items, list), f"bad {kind}")
        value = [_decode(item, path + [i], inputs, state, depth + 1) for i, item in enumerate(items)]
        try:
            return set(value) if kind == "set" else frozenset(value)
        except TypeError:
            raise WireError(f"an item of a {kind} that cannot be in one") from None
    if kind == "unsupported":
        return Unsupported(valid_text(str(node.get("type", "?"))[:100]))
    if kind == "array":
        value = _decode_array(node)
        _weigh(state, value.nbytes)
        if node.get("scalar"):
            _want(value.shape == (), "a scalar must have shape ()")
            return value[()]
        state["out"][tuple(path)] = value
        return value
    if kind in ("list", "tuple"):
        items = node.get("v")
        _want(isinstance(items, list), f"bad {kind}")
        value = [_decode(item, path + [i], inputs, state, depth + 1) for i, item in enumerate(items)]
        return value if kind == "list" else tuple(value)
    if kind == "dict":
        items = node.get("v")
        _want(isinstance(items, list), "bad dict")
        value = {}
        for i, item in enumerate(items):
            _want(isinstance(item, list) and len(item) == 2, "bad dict entry")
            if isinstance(item[0], str):
                _want(len(item[0]) <= 200, "bad dict entry")
                value[valid_text(item[0])] = _decode(item[1], path + [item[0]], inputs, state, depth + 1)
                continue
            key = _decode(item[0], path + [f"\0k{i}"], (), state, depth + 1)
            try:
                value[key] = _decode(item[1], path + [f"\0{i}"], inputs, state, depth + 1)
            except TypeError:
                raise WireError("a dict key that cannot be one") from None
        return value
    if kind == "ref":
        return _resolve(node.get("path"), inputs, state)
    raise WireError(f"unknown kind of value {kind[:40]!r}")


def _float(text):
    try:
        return float.fromhex(text)
    except (TypeError, ValueError, OverflowError):
        raise WireError("bad float") from None


def _decode_array(node):
    dtype, shape, data = node.get("dtype"), node.get("shape"), node.get("data")
    _want(dtype in DTYPES, "array of an unsupported dtype")
    _want(isinstance(shape, list) and len(shape) <= 32
          and all(type(n) is int and 0 <= n <= 2 ** 40 for n in shape), "bad array shape")
    _want(isinstance(data, str), "bad array data")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise WireError("array data is not base64") from None
    count = 1
    for n in shape:
        count *= n
    _want(count * np.dtype(dtype).itemsize == len(raw), "array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _resolve(path, inputs, state):
    _want(isinstance(path, list) and 1 <= len(path) <= MAX_DEPTH + 1 and path[0] in ("in", "out")
          and all(isinstance(p, (int, str)) and not isinstance(p, bool) for p in path[1:]), "bad reference")
    if path[0] == "out":
        value = state["out"].get(tuple(path))
        _want(isinstance(value, np.ndarray), "a reference to a part sent before must name an array")
        _weigh(state, value.nbytes)
        return value
    value = inputs
    for step in path[1:]:
        try:
            _want(isinstance(value, (list, tuple, dict)), "reference into a non-container")
            value = value[step]
        except (KeyError, IndexError, TypeError):
            raise WireError("reference to a part of the inputs that does not exist") from None
    _weigh(state, _weight_of(value))
    return value
