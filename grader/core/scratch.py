"""The kit's scratch folders in the temporary folder: one prefix for all, the kind and the owner's pid after it,
so that a run killed with SIGKILL has its folders removed by the next one."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

SCRATCH = "trusted-grader-"  # every scratch folder's prefix, followed by its kind and its owner's pid


def prefix(kind: str) -> str:
    """The name's start for a scratch folder of this process (tempfile's `prefix`): swept once the process is gone."""
    return f"{SCRATCH}{kind}-{os.getpid()}-"


def scratch_owner(path: str | Path) -> int:
    """The pid of the process that made the scratch folder `path` (0 if it is not named by this kit)."""
    try:
        return int(Path(path).name.removeprefix(SCRATCH).split("-")[1])
    except (ValueError, IndexError):
        return 0


# Where the kit also makes scratch folders, whatever the temporary folder: the fork servers' sockets go there when
# the temporary folder's path is too long for a socket's (grader.run.warm).
ALSO_SWEPT = "/tmp"


def sweep_scratch(folder: str | Path | None = None) -> None:
    """Remove scratch folders whose grader is gone (killed with SIGKILL, which leaves no time to clean up)."""
    folders = {Path(folder)} if folder else {Path(tempfile.gettempdir()), Path(ALSO_SWEPT)}
    for path in (path for where in folders for path in where.glob(f"{SCRATCH}*-*-*")):
        owner = scratch_owner(path)
        if not owner:
            continue  # not named by this kit
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's
