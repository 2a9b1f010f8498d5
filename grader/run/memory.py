"""Memory charged to each submission, however its code holds it.

An address-space limit sees only what a process maps. Memory in a memfd, in System V
shared memory or in a tmpfs file is charged to no process: under a 256 MB cap one cell
could hold gigabytes, and the kernel's out-of-memory killer would then pick someone
else (a grader worker, another student's sandbox, the grader itself). Two ways to
close that, the first where the machine allows it:

- a memory cgroup per sandbox (cgroup v1, or v2 where this process may create a child
  of its own cgroup): every page the sandbox's processes use is charged there, tmpfs,
  memfd and shared memory included, and when it is full the kernel's out-of-memory
  killer acts inside that cgroup only. The sandboxes sit in one cgroup for the batch,
  capped at their sum;
- without one (an ordinary user's machine, where no cgroup is delegated), the sandbox
  is refused the calls that make memory outside its address space (memfd_create,
  shmget, msgget: sandbox.py), and a `Watch` outside it counts, every WATCH_SECONDS,
  the anonymous and shared memory its processes hold together and stops it past its
  limit. Each
  process is also capped by the address-space limit, which bounds what they can take
  between two counts; its two tmpfs are size-capped and counted in its share.

Either way `plan` lets no more sandboxes run at once than the machine's memory holds,
at their full limits: one student's use can never push another's sandbox, a worker
or the grader out of memory.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grader.core.scratch import SCRATCH

if TYPE_CHECKING:
    from grader.core.limits import Limits

PREFIX = SCRATCH  # the batch cgroup's name, followed by the grader's pid
RESERVE = 0.8           # share of the available memory the sandboxes may claim in all
# What a grading worker may map beyond what it maps when it starts. It reads the student's notebook and
# replays the tests on the student's outputs (verdict.py), both outside the sandbox: a value built to
# blow up in a test's arithmetic (an array that broadcasts to gigabytes) meets a MemoryError there.
WORKER_MB = 1536
WATCH_SECONDS = 0.02  # how often a Watch counts what a sandbox holds
# What a watched sandbox's processes can fault in between two counts, on top of its limit (a page fault zeroes
# a few GB a second on a core); charged in its share, so the plan never counts on the watch being instant.
OVERSHOOT_MB = 512
OUT_OF_MEMORY_EXIT = 99  # how a watched sandbox's own process says its runner was stopped for its memory


@dataclass(frozen=True)
class Plan:
    """How a batch's sandboxes are held: how many at once, each one's share, and where they are charged."""
    jobs: int
    share_mb: int        # the most one sandbox can hold, everything counted
    cgroup: str = ""     # the batch's cgroup folder ("" without one: memfd and shared memory are refused)
    note: str = ""       # said to the instructor when fewer sandboxes run at once than asked
    asked: int = 0       # how many were asked for

    @property
    def how(self) -> str:
        """The workers used and why, in a line (the benchmark writes it)."""
        charge = "its memory cgroup" if self.cgroup else f"a watch every {WATCH_SECONDS * 1000:g} ms (no cgroup)"
        why = f" ({self.asked} asked, the memory holds {self.jobs})" if self.jobs < self.asked else ""
        return f"{self.jobs} at a time{why}; a sandbox may hold {self.share_mb} MB, counted by {charge}"


def share_mb(limits: Limits, charged: bool) -> int:
    """What one sandbox can hold at most, its two tmpfs included. Charged to a cgroup: its limit. Watched:
    its limit and what its processes can fault in between two counts."""
    if charged:
        return limits.memory_mb + 2 * limits.disk_mb
    return limits.memory_mb + 2 * limits.disk_mb + min(OVERSHOOT_MB, (limits.processes - 1) * limits.memory_mb)


def available_mb() -> int:
    """Memory this machine can give now: MemAvailable, within this process's own cgroup limit if any."""
    info = _meminfo()
    free = info.get("MemAvailable", info.get("MemFree", 0)) // 1024
    own = _own_folder()
    if own:
        limit, usage = _read_int(own, "memory.limit_in_bytes", "memory.max"), \
            _read_int(own, "memory.usage_in_bytes", "memory.current")
        if limit and usage is not None and limit < (1 << 60):
            free = min(free, (limit - usage) // (1024 * 1024))
    return free


def plan(jobs: int, limits: Limits, use_cgroup: bool = True) -> Plan:
    """A Plan for `jobs` sandboxes at once; fewer when their shares would not fit in memory.
    Raises MemoryError (with the fix) when not even one fits."""
    folder = make_batch_cgroup() if use_cgroup else ""
    share = share_mb(limits, bool(folder))
    room = int(available_mb() * RESERVE)
    fits = room // (share + WORKER_MB)  # each at once: a worker and its sandbox
    if fits < 1:
        remove(folder)
        raise MemoryError(f"one sandbox may hold up to {share} MB (--memory-mb {limits.memory_mb}"
                          + ("" if folder else f" for each of its {limits.processes} processes")
                          + f", and two {limits.disk_mb} MB tmpfs) and its worker {WORKER_MB} MB, but only {room} "
                          "MB of this machine's memory is free for grading. Lower --memory-mb, or free memory.")
    note, asked = "", jobs
    if fits < jobs:
        note = (f"grading {fits} at a time, not {jobs}: each sandbox may hold up to {share} MB, its worker "
                f"{WORKER_MB} MB, and {room} MB is free for grading (lower --memory-mb to grade more at once)")
        jobs = fits
    if folder:
        _write(folder, ("memory.limit_in_bytes", "memory.max"), jobs * share * 1024 * 1024)
    return Plan(jobs, share, folder, note, asked)


class Watch:
    """The anonymous and shared memory a sandbox's processes hold together, counted from outside it, where no
    cgroup charges it. Every process counts what it holds resident in full, what a fork inherited included:
    never less than they really hold. `runner` is the sandbox's first process; its own processes are read from the
    /proc it mounts for them (the kernel's view of its PID namespace), until then the runner alone."""

    def __init__(self, runner: int, limit_mb: int, baseline_bytes: int) -> None:
        self.runner, self.limit = runner, limit_mb * 1024 * 1024 + baseline_bytes
        self.peak = 0
        # The machine's /proc, held open: the sandbox's pivot_root moves the root of every process in its mount
        # namespace, the watching one included, and "/proc" then names the sandbox's own.
        self.proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)

    def held(self) -> int:
        """Bytes held now by the sandbox's processes (resident, not backed by a file on disk)."""
        inside = self._sandbox_proc()
        if inside is None:
            return 0  # the runner has ended
        try:
            if os.fstat(inside).st_dev != os.fstat(self.proc).st_dev:  # the sandbox has mounted its own /proc
                total = sum(_process_bytes(name, inside) for name in os.listdir(inside) if name.isdigit())
            else:
                total = _process_bytes(str(self.runner), self.proc)
        finally:
            os.close(inside)
        self.peak = max(self.peak, total)
        return total

    def over(self) -> bool:
        try:
            return self.held() > self.limit
        except _Unseen:  # alive, and none of its threads shows its files: nothing honest does that
            return True

    def _sandbox_proc(self):
        """The sandbox's root's /proc, opened through the runner, or through any of its threads when its first
        has ended (its own root link is then gone); None once the runner has ended; _Unseen otherwise."""
        for path in [f"{self.runner}"] + [f"{self.runner}/task/{tid}" for tid in _threads(self.runner, self.proc)]:
            try:
                return os.open(f"{path}/root/proc", os.O_RDONLY | os.O_DIRECTORY, dir_fd=self.proc)
            except OSError:
                continue
        if _ended(self.runner, self.proc):  # gone, or exited and not yet reaped (its links are gone too)
            return None
        raise _Unseen()


class _Unseen(Exception):
    """A watched sandbox whose memory cannot be read."""


def _threads(pid, folder):
    """The threads of process `pid` (in the open /proc `folder`); none once it has ended."""
    try:
        tasks = os.open(f"{pid}/task", os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
    except OSError:
        return []
    try:
        return os.listdir(tasks)
    finally:
        os.close(tasks)


def _ended(pid, folder):
    """True when no thread of process `pid` (in the open /proc `folder`) runs any more: each has exited (a zombie
    until its parent reaps it) or is gone."""
    for tid in _threads(pid, folder):
        try:
            fd = os.open(f"{pid}/task/{tid}/stat", os.O_RDONLY, dir_fd=folder)
            try:
                state = os.read(fd, 4096).rsplit(b")", 1)[1].split()[0]
            finally:
                os.close(fd)
        except (OSError, IndexError):
            continue  # this thread is gone
        if state not in (b"Z", b"X"):
            return False
    return True


def _process_bytes(pid, folder):
    """anonymous_bytes of process `pid` (in the open /proc `folder`). A process whose first thread has ended
    while others run shows no memory in its own status file: then its threads' files say what it holds."""
    held = anonymous_bytes(f"{pid}/status", folder)
    if held:
        return held
    # The threads share one memory: the largest any of them shows, once.
    return max((anonymous_bytes(f"{pid}/task/{tid}/status", folder) for tid in _threads(pid, folder)), default=0)


def anonymous_bytes(status: str = "/proc/self/status", folder: int | None = None) -> int:
    """What the process of the `status` file (in the open `folder`) holds resident that no file on disk backs:
    its anonymous memory and its shared memory (a shared anonymous mapping is the second kind, as Python's
    mmap.mmap(-1, n) makes one); 0 once it has ended."""
    try:
        fd = os.open(status, os.O_RDONLY, dir_fd=folder)
        try:
            text = os.read(fd, 8192)
        finally:
            os.close(fd)
        kb = 0
        for line in text.splitlines():
            if line.startswith((b"RssAnon:", b"RssShmem:")):
                kb += int(line.split()[1])
        return kb * 1024
    except (OSError, ValueError, IndexError):
        return 0


def cap_this_process(headroom_mb: int) -> None:
    """Cap this process's address space at what it maps now plus `headroom_mb`."""
    import resource
    try:
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * resource.getpagesize()
        cap = mapped + headroom_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (OSError, ValueError):
        pass  # no /proc: the worker runs without the cap, as before


def peaks(root: int | None = None) -> dict[str, float]:
    """{"<role> <pid>": the most memory (MB resident) the process has held}, for this process and every process
    under it still alive: its fork server, the grading workers started from it, and each worker's own fork
    server and sandboxes. A process gone (or unreadable) is left out."""
    found, todo = {}, [(root or os.getpid(), "grader")]
    while todo:
        pid, role = todo.pop()
        peak = _status_mb(pid, "VmHWM")
        if peak is None:
            continue
        found[f"{role} {pid}"] = peak
        for child in _children(pid):
            if role.endswith("fork server"):  # forked from it: its command line, but a worker or a sandbox
                todo.append((child, "sandbox" if role.startswith("worker") else "worker"))
                continue
            command = _read(f"/proc/{child}/cmdline")
            if "resource_tracker" in command:
                continue  # multiprocessing's own bookkeeping
            elif "multiprocessing.forkserver" in command:
                todo.append((child, "worker's fork server" if role == "worker" else "fork server"))
            else:
                todo.append((child, "process"))
    return found


def reset_peaks(root: int | None = None) -> None:
    """Start the peak of every process `peaks` would report over from what it holds now (Linux's clear_refs), so
    that what it reports next is the peak of what they do from here, not of what this process did before (a
    test runner, a benchmark's earlier run). A process that refuses keeps its peak."""
    for name in peaks(root):
        try:
            with open(f"/proc/{name.rsplit(' ', 1)[1]}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def _children(pid):
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += [int(p) for p in _read(f"/proc/{pid}/task/{task}/children").split()]
    except (OSError, ValueError):
        pass
    return found


def _status_mb(pid, field):
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


# ---------------------------------------------------------------- cgroups

def _meminfo():
    values = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                name, _, rest = line.partition(":")
                values[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values


def _own_folder():
    """This process's memory cgroup folder (v1's memory controller, or v2's unified tree), or None."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    mounts = _mounts()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") and mounts.get("memory"):
            return os.path.join(mounts["memory"], path.lstrip("/"))
    for line in lines:
        if line.startswith("0::") and mounts.get("unified"):
            folder = os.path.join(mounts["unified"], line[3:].lstrip("/"))
            if "memory" in _read(os.path.join(folder, "cgroup.controllers")).split():
                return folder
    return None


def _mounts():
    """{"memory": v1 memory controller mount, "unified": cgroup2 mount}, as far as they exist."""
    found = {}
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                dash = fields.index("-")
                kind, options = fields[dash + 1], fields[-1].split(",")
                if kind == "cgroup" and "memory" in options:
                    found.setdefault("memory", fields[4])
                elif kind == "cgroup2":
                    found.setdefault("unified", fields[4])
    except (OSError, ValueError, IndexError):
        pass
    return found


def make_batch_cgroup() -> str:
    """A new cgroup for this batch's sandboxes under this process's own, or "" where none can be made."""
    own = _own_folder()
    if not own or not os.access(own, os.W_OK):
        return ""
    sweep(own)
    folder = os.path.join(own, f"{PREFIX}{os.getpid()}")
    try:
        os.makedirs(folder, exist_ok=True)
        if os.path.exists(os.path.join(own, "cgroup.subtree_control")):  # v2: children need the controller
            _write(own, ("cgroup.subtree_control",), "+memory")
            _write(folder, ("cgroup.subtree_control",), "+memory")
        if os.path.exists(os.path.join(folder, "memory.use_hierarchy")) and _read_int(folder, "memory.use_hierarchy") != 1:
            raise OSError("memory.use_hierarchy is off: a batch limit would not cover its sandboxes")
        return folder
    except OSError:
        remove(folder)
        return ""


def make_sandbox_cgroup(batch: str, limit_mb: int) -> str:
    """A child of the batch cgroup, limited to `limit_mb`, for one sandbox; "" if it cannot be made."""
    if not batch or not os.path.isdir(batch):
        return ""
    folder = os.path.join(batch, f"sandbox-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.mkdir(folder)
        limit = limit_mb * 1024 * 1024
        _write(folder, ("memory.limit_in_bytes", "memory.max"), limit)
        if os.path.exists(os.path.join(folder, "memory.memsw.limit_in_bytes")):  # v1: swap counted too
            _write(folder, ("memory.memsw.limit_in_bytes",), limit)
        if os.path.exists(os.path.join(folder, "memory.swap.max")):  # v2: no swap at all
            _write(folder, ("memory.swap.max",), 0)
        return folder
    except OSError:
        remove(folder)
        return ""


def join(folder: str) -> None:
    """Move this process (and so every process it starts) into the cgroup `folder`."""
    _write(folder, ("cgroup.procs",), os.getpid())


def usage(folder: str) -> tuple[int, int]:
    """(peak bytes, out-of-memory kills) of a sandbox's cgroup, read once its processes ended."""
    peak = _read_int(folder, "memory.max_usage_in_bytes", "memory.peak") or 0
    kills = 0
    for name in ("memory.oom_control", "memory.events"):
        for line in _read(os.path.join(folder, name)).splitlines():
            if line.startswith("oom_kill "):
                kills = int(line.split()[1])
    return peak, kills


def remove(folder: str, wait: float = 2.0) -> None:
    """Remove a cgroup folder (its processes are gone, or going: wait a little for them)."""
    if not folder:
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            for entry in os.scandir(folder):
                if entry.is_dir(follow_symlinks=False):
                    remove(entry.path, max(deadline - time.monotonic(), 0))
            os.rmdir(folder)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return  # sweep() removes it next time
            time.sleep(0.02)


def sweep(own: str) -> None:
    """Remove the batch cgroups of graders that are gone (killed with SIGKILL, which leaves no time)."""
    try:
        entries = list(os.scandir(own))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False):
            try:
                os.kill(int(entry.name[len(PREFIX):]), 0)
            except ValueError:
                continue
            except ProcessLookupError:
                remove(entry.path, wait=0)
            except PermissionError:
                pass


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _read_int(folder, *names):
    for name in names:
        text = _read(os.path.join(folder, name)).strip()
        if text == "max":
            return 1 << 62
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def _write(folder, names, value):
    """Write `value` to the first of `names` that exists in `folder` (v1 and v2 name files differently)."""
    for name in names:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, "w") as f:
                f.write(str(value))
            return
    raise OSError(f"no {' or '.join(names)} in {folder}")
