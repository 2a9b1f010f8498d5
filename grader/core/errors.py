"""The errors the kit raises for its callers to report: each message says what went wrong and the fix."""
from __future__ import annotations


class KitError(Exception):
    """A problem the user can fix; the message says what and how."""


class SandboxFailure(Exception):
    """Confinement could not be set up on this machine: no submission can be graded safely."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step
