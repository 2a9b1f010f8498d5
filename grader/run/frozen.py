"""Imported last by each fork server (warm.py), after the heavy modules: the fork server's warm-up.

First the sandbox's IPython shell is made (execute.warm_up), and told IPython's transforms of the release's code
cells (execute.remember_transforms), if the worker sent them; then the modules a worker's fork server was told
to import ahead (the environment's modules the assignment's master imports: warm.modules_imported), each on its
own, a failure left for the notebook to meet as it would anyway. Then every object made so far is moved out of
the garbage collector's reach, for good: each process forked from the server (a pool worker, a sandbox) would otherwise have the collector walk those objects,
writing to every page that holds one, and so copy the server's memory page by page. Frozen, they are shared
until the child itself writes to them.
"""
import gc
import importlib
import json
import os
import signal
import warnings

from grader.run import execute
from grader.run.warm import WARM_CELLS, WARM_MODULES

# The grader blocks Ctrl-C while it starts a server (warm.context): lifted here, where it stays ignored, so that no
# process forked from the server starts with it blocked.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
execute.warm_up()
execute.remember_transforms(json.loads(os.environ.pop(WARM_CELLS, "[]")))
for _name in filter(None, os.environ.pop(WARM_MODULES, "").split(",")):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(_name)
    except BaseException:  # noqa: BLE001 -- a module that cannot load here is the notebook's to meet
        pass

gc.freeze()
