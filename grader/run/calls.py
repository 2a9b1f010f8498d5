"""The calls a test cell makes of the student's functions, recorded from the master (verdict.py) and made again in
the student's process, right after that test cell (execute.py): what the student's functions return there is
judged outside, by the grader.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grader.core import wire

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, MutableMapping


@dataclass(frozen=True)
class Call:
    function: str        # the student's function called, or the name read (see `reads`)
    inputs: dict | None  # wire-encoded (args tuple); None for a name the test reads
    master_output: Any   # wire-encoded, what the master's solution returned (or the master's value of the name)
    absent: tuple = ()   # the student's functions the test had deleted when it made the call (`del squares`, to
    #                      see that another function needs it): the call is made again without them

    @property
    def reads(self) -> bool:
        return self.inputs is None


@contextlib.contextmanager
def without(namespace: MutableMapping[str, Any], names: Iterable[str]) -> Iterator[None]:
    """`namespace` with `names` taken out for the time of a call, then put back."""
    kept = {n: namespace.pop(n) for n in names if n in namespace}
    try:
        yield
    finally:
        namespace.update(kept)


def run_calls(namespace: MutableMapping[str, Any], calls: Iterable[Call]) -> list[Any]:
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
            with warnings.catch_warnings(), without(namespace, call.absent):
                warnings.simplefilter("ignore")
                value = function(*args)
            results.append(wire.encode(value, args))
        except BaseException as error:  # noqa: B902 -- a timeout must not stop the others' report
            results.append({"k": "raised", "ename": type(error).__name__, "evalue": str(error)[:500]})
    return results
