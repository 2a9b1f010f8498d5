"""Kernel confinement for the process that runs a student's notebook.

The grader never trusts Python-level hooks to keep student code in: each submission
runs in a process that the kernel itself confines, set up here in two steps.

`isolate()` runs in the process the grader started for this submission (trusted code
only). It gives it new mount, PID, network, IPC and UTS namespaces (and a user
namespace when the grader is not root), so that the next process it forks is PID 1
of an empty PID namespace: once that process ends, the kernel kills everything it
started.

`confine()` runs in that forked process before any student code:
- a new root file system on a tmpfs, read-only, holding only the Python environment
  (read-only bind mounts), a few device nodes, a fresh /proc, the working copy and a
  private /tmp (two size-capped tmpfs, the only writable places); the course folder,
  the gradebook, other students' files and the instructor's home are not in it;
- no network (a new network namespace has only a loopback device, down);
- an unprivileged identity: as root, a uid of its own with no capabilities; as an
  ordinary user, every capability dropped inside the user namespace;
- no_new_privs and a seccomp filter that refuses the calls that could undo the above
  or reach other processes (mount, namespaces, ptrace, bpf, keyrings, ...);
- rlimits on processes, open files and core dumps (memory is capped by the runner, and
  charged to a cgroup of its own where the machine gives one: memory.py).

The batch's canary (grade/batch.py, run_canary) grades the master's answers and the release
in it before any student, so that a machine that cannot confine stops the batch first, with
the reason and what to do (advice).
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Mapping

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP = 0x10000000, 0x20000000, 0x40000000, 0x02000000
NAMESPACE_FLAGS = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET \
    | CLONE_NEWCGROUP

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 4, 38, 22
SECCOMP_MODE_FILTER = 2

SANDBOX_UID_BASE = 1_900_000_000  # as root, each sandbox runs as this + the pid of its parent: a uid no one has
WORKDIR = "/submission"           # the working copy, as the student's code sees it
TMPDIR = "/tmp"

# Per architecture: audit arch, and the numbers of the system calls the filter refuses.
_ARCH = {
    "x86_64": dict(audit=0xC000003E, pivot_root=155, capset=126, clone=56, clone3=435, refuse=[
        272, 308, 165, 166, 155, 161,       # unshare, setns, mount, umount2, pivot_root, chroot
        101, 310, 311,                     # ptrace, process_vm_readv, process_vm_writev
        246, 320, 169, 175, 176, 313,      # kexec_load, kexec_file_load, reboot, init/delete_module, finit_module
        321, 298, 323, 425,                # bpf, perf_event_open, userfaultfd, io_uring_setup
        248, 249, 250,                     # add_key, request_key, keyctl
        428, 429, 430, 431, 432, 442,      # open_tree, move_mount, fsopen, fsconfig, fsmount, mount_setattr
        163, 167, 168, 304,                # acct, swapon, swapoff, open_by_handle_at
        447, 278,                          # memfd_secret, vmsplice (user pages held by a pipe, in no process)
    ], uncharged=[319, 29, 68]),           # memfd_create, shmget, msgget: memory outside the address space
                                           # (a message queue's is the kernel's: memory.py's watch cannot see it)
    "aarch64": dict(audit=0xC00000B7, pivot_root=41, capset=91, clone=220, clone3=435, refuse=[
        97, 268, 40, 39, 41, 51,
        117, 270, 271,
        104, 294, 142, 105, 106, 273,
        280, 241, 282, 425,
        217, 218, 219,
        428, 429, 430, 431, 432, 442,
        89, 224, 225, 265,
        447, 75,
    ], uncharged=[279, 194, 186]),
}


class SandboxError(Exception):
    """Confinement could not be set up; `step` says which part, the message says why."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(result: int, step: str, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise SandboxError(step, f"{what} failed: {os.strerror(number)} ({errno.errorcode.get(number, number)})")


def _arch() -> dict[str, Any]:
    arch = _ARCH.get(platform.machine())
    if arch is None:
        raise SandboxError("seccomp", f"no system-call filter for the {platform.machine()} architecture "
                                      "(only x86_64 and aarch64)")
    return arch


def die_with_parent(signal_number: int = 9) -> None:
    """Have the kernel send this process `signal_number` (SIGKILL by default) when its parent ends."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0), "prctl", "PR_SET_PDEATHSIG")


# ---------------------------------------------------------------- step 1, in the trusted parent

def isolate(use_user_namespace: bool | None = None) -> str:
    """New namespaces for this process's future children. Returns the mode used ("root" or "userns")."""
    if use_user_namespace is None:
        use_user_namespace = os.geteuid() != 0
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    uid, gid = os.geteuid(), os.getegid()
    if use_user_namespace:
        _check(_libc.unshare(flags | CLONE_NEWUSER), "user namespace",
               "unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | ...)")
        # Only our own uid and gid exist inside: the sandbox can own nothing else.
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        return "userns"
    _check(_libc.unshare(flags), "namespaces", "unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | ...)")
    return "root"


# ---------------------------------------------------------------- step 2, in the sandboxed child

def readable_roots() -> list[str]:
    """The folders the sandbox sees read-only: the system and this Python's environment."""
    roots = ["/usr", "/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime", "/etc/ssl/certs"]
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}:
        roots.append(os.path.realpath(prefix))
        roots.append(os.path.abspath(prefix))
    seen: set[str] = set()
    kept: list[str] = []
    for root in sorted(set(roots), key=len):
        if os.path.exists(root) and not any(root == s or root.startswith(s.rstrip("/") + "/") for s in seen):
            seen.add(root)
            kept.append(root)
    return kept


def _mkdirs(path):
    os.makedirs(path, exist_ok=True)


def _locked_flags(path):
    """The mount flags of `path` that a read-only remount of a bind of it must keep."""
    st = os.statvfs(path)
    keep = 0
    for st_flag, ms_flag in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
                             (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
                             (os.ST_RELATIME, MS_RELATIME)):
        if st.f_flag & st_flag:
            keep |= ms_flag
    return keep


def _open_source(path):
    """(path, O_PATH descriptor, is a folder, locked flags): a bind source held open, so that it
    can still be bound after the new root's tmpfs hides the folder it lives in (say, /tmp)."""
    return path, os.open(path, os.O_PATH | os.O_CLOEXEC), os.path.isdir(path), _locked_flags(path)


def _bind_readonly(source, target):
    path, fd, is_dir, keep = source
    if is_dir:
        _mkdirs(target)
    else:
        _mkdirs(os.path.dirname(target))
        open(target, "a").close()
    _check(_libc.mount(f"/proc/self/fd/{fd}".encode(), target.encode(), None, MS_BIND | MS_REC, None), "mount",
           f"bind mount of {path}")
    _check(_libc.mount(None, target.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | keep, None),
           "mount", f"read-only remount of {path}")
    os.close(fd)


def _tmpfs(target, size_bytes, mode):
    _mkdirs(target)
    _check(_libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                       f"size={size_bytes},mode={mode:o}".encode()), "mount", f"tmpfs at {target}")


def write_files(folder: str | os.PathLike[str], files: Mapping[str, bytes], uid: int | None = None,
                gid: int | None = None) -> None:
    """Write {relative path: bytes} under `folder` (owned by uid, gid if given).

    A path that leaves the folder, or that cannot be written (a file where a folder is, the disk
    cap reached), is skipped: what was handed in never stops the grading of the rest.
    """
    folder = os.path.abspath(folder)
    group = cast(int, gid)  # given with uid, whenever uid is
    for path, data in files.items():
        target = os.path.normpath(os.path.join(folder, path))
        if not target.startswith(folder + os.sep):
            continue
        parent = os.path.dirname(target)
        try:
            os.makedirs(parent, exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
        except OSError:
            continue
        if uid is not None:
            os.chown(target, uid, group)
            while parent != folder:
                os.chown(parent, uid, group)
                parent = os.path.dirname(parent)
    if uid is not None:
        os.chown(folder, uid, group)


def confine(files: Mapping[str, bytes], disk_mb: int, max_processes: int, mode: str, sandbox_uid: int,
            charged: bool = False) -> None:
    """Enter the sandbox (see the module docstring). Call in the child that `isolate` prepared, PID 1.
    `charged`: its memory is charged to a cgroup of its own; if not, memfd_create, shmget and msgget are
    refused."""
    die_with_parent()
    uid, gid = (sandbox_uid, sandbox_uid) if mode == "root" else (os.geteuid(), os.getegid())
    size = disk_mb * 1024 * 1024
    # Any existing folder will do as the mount point, since this tmpfs is only seen here; what it
    # hides (the environment may live under /tmp) is opened first.
    new_root = "/tmp"
    sources = [_open_source(path) for path in readable_roots()]
    links = {name: os.readlink("/" + name) if os.path.islink("/" + name) else _open_source("/" + name)
             for name in ("bin", "lib", "lib64", "sbin") if os.path.lexists("/" + name)}
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount", "making / private")
    _check(_libc.mount(b"tmpfs", new_root.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=4m,mode=755"),
           "mount", "tmpfs for the new root")
    _tmpfs(new_root + TMPDIR, size, 0o1777)  # first: the environment may be bound inside it
    for source in sources:
        _bind_readonly(source, new_root + source[0])
    for name, link in links.items():  # merged-/usr systems: these are links into /usr
        if isinstance(link, str):
            os.symlink(link, f"{new_root}/{name}")
        else:
            _bind_readonly(link, f"{new_root}/{name}")
    _tmpfs(new_root + "/dev", 1024 * 1024, 0o755)
    for node in ("null", "zero", "full", "random", "urandom"):
        target = f"{new_root}/dev/{node}"
        open(target, "a").close()
        _check(_libc.mount(f"/dev/{node}".encode(), target.encode(), None, MS_BIND, None), "mount", f"/dev/{node}")
    os.symlink("/proc/self/fd", f"{new_root}/dev/fd")
    _mkdirs(new_root + "/proc")
    # A /proc of the new PID namespace: it shows the sandbox's own processes only. Some container
    # runtimes forbid mounting it; the sandbox works without it.
    _libc.mount(b"proc", (new_root + "/proc").encode(), b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    _tmpfs(new_root + WORKDIR, size, 0o755)
    write_files(new_root + WORKDIR, files, uid, gid)

    os.chdir(new_root)
    _check(_libc.syscall(_arch()["pivot_root"], b".", b"."), "pivot_root", "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "mount", "detaching the old root")
    os.chdir("/")
    _check(_libc.mount(None, b"/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None), "mount",
           "read-only remount of the new root")
    os.chdir(WORKDIR)

    if mode == "root":
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # leaving uid 0 clears every capability
        die_with_parent()  # the kernel forgets the parent-death signal when the uid changes
    else:
        _drop_capabilities()
    import resource
    resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl", "PR_SET_NO_NEW_PRIVS")
    _install_seccomp(charged)


def _drop_capabilities():
    header = struct.pack("II", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = bytes(24)                            # two empty (effective, permitted, inheritable) sets
    _check(_libc.syscall(_arch()["capset"], header, data), "capabilities", "capset")


def _install_seccomp(charged=False):
    arch = _arch()
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, KILL = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    refuse = sorted(set(arch["refuse"] + ([] if charged else arch["uncharged"])))
    program = [(LD, 0, 0, 4), (JEQ, 1, 0, arch["audit"]), (RET, 0, 0, KILL), (LD, 0, 0, 0),
               (JGE, 0, 1, 0x40000000), (RET, 0, 0, eperm)]  # x32 system calls: refused
    for number in refuse:
        program += [(JEQ, 0, 1, number), (RET, 0, 0, eperm)]
    program += [(JEQ, 0, 1, arch["clone3"]), (RET, 0, 0, enosys),  # its flags are out of reach: libc falls back
                (JEQ, 0, 3, arch["clone"]), (LD, 0, 0, 16),       # clone's flags (low 32 bits)
                (JSET, 0, 1, NAMESPACE_FLAGS), (RET, 0, 0, eperm),
                (RET, 0, 0, ALLOW)]
    blob = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(blob)
    fprog = struct.pack("HxxxxxxQ", len(program), ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog_buffer), 0, 0),
           "seccomp", "installing the system-call filter")


# ---------------------------------------------------------------- checking the machine

ADVICE = {
    "user namespace": "this user may not create user namespaces. Run the grader as root, or allow them "
                      "(`sysctl -w kernel.unprivileged_userns_clone=1` on Debian, or "
                      "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 24.04 and later, "
                      "or raise user.max_user_namespaces).",
    "namespaces": "the kernel refused new namespaces (CONFIG_*_NS missing, or a container that forbids them). "
                  "Run the grader on a Linux host or VM with namespaces enabled.",
    "mount": "a mount inside the sandbox failed. In a container, give it a user namespace or run it privileged.",
    "pivot_root": "pivot_root failed: the sandbox could not switch to its own root file system.",
    "seccomp": "the kernel has no seccomp filter support (CONFIG_SECCOMP_FILTER).",
    "capabilities": "capabilities could not be dropped inside the user namespace.",
    "prctl": "the kernel refused a prctl the sandbox needs.",
}


def advice(step: str) -> str:
    return ADVICE.get(step, "") + (" As a last resort, `--unconfined` grades without confinement (student code "
                                   "then runs with your rights; the summary, the CSV and the report say so).")
