"""Unpacking the archives an LMS or a student hands in: streamed, capped, never trusted.

An LMS download is a zip of everyone's uploads, and an upload may itself be an archive.
Every member is checked before it is written: only regular files, under names that stay
inside the target folder and can be used (student_files.py's rules), each streamed in
chunks with a cap on its size; the whole collect has a cap on what it may write and on
how many members it may read, and archives inside archives are opened only so deep. A
member that breaks a rule is skipped with a note naming it; the rest is unpacked.
"""
from __future__ import annotations

import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core.plain_text import unusable_name
from grader.core.student_files import shown, size_in_words

if TYPE_CHECKING:
    from _typeshed import SupportsRead

# Names that say "an archive": such a file is unpacked, and refused if it is not one.
SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".gz", ".bz2", ".xz")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Caps:
    """How much one collect may unpack (see the README's section on intake)."""
    member_bytes: int = 64 * 1024 * 1024   # one file, once unpacked
    total_bytes: int = 2 * 1024 ** 3       # everything unpacked by one collect, nested archives included
    members: int = 20_000                  # entries read by one collect, nested archives included
    depth: int = 3                         # archives inside archives: the download, an upload, one more


@dataclass
class Budget:
    """What is left of the caps during one collect, and the notes about what was skipped."""
    caps: Caps = Caps()
    # None: the caps' own (__post_init__), so an int from then on; hence the ignores.
    bytes_left: int = None  # type: ignore[assignment]
    members_left: int = None  # type: ignore[assignment]
    notes: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    def __post_init__(self) -> None:
        self.bytes_left = self.caps.total_bytes if self.bytes_left is None else self.bytes_left
        self.members_left = self.caps.members if self.members_left is None else self.members_left


def named_like_one(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def kind(path: str | Path) -> str | None:
    """"zip" or "tar" from what the file holds (not its name), or None when it is neither."""
    try:
        with open(path, "rb") as f:
            head = f.read(262)
    except OSError:
        return None
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[257:262] == b"ustar" or head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        try:  # compressed: a tar inside, or a single compressed file (not an archive here)
            with tarfile.open(path, "r:*") as archive:
                archive.next()
            return "tar"
        except (tarfile.TarError, EOFError, OSError, ValueError):
            return None
    return None


def member_path(name: str) -> tuple[str | None, str | None]:
    """The member's relative path, or (None, why) when it cannot be written as it is named."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return None, "it has no name"
    if ".." in parts or name.startswith(("/", "\\")):
        return None, "its name points outside the archive"
    for part in parts:
        why = unusable_name(part)
        if why:
            return None, why
    return "/".join(parts), None


def unpack(path: str | Path, into: str | Path, budget: Budget, where: str) -> bool:
    """Write the regular files of the archive at `path` under the folder `into`.

    `where` names the archive in notes (say "jdoe: homework.zip"). Returns False when `path`
    is not an archive that can be read at all; members that break a rule are noted and skipped.
    """
    found = kind(path)
    if found is None:
        return False
    os.makedirs(into, exist_ok=True)
    try:
        if found == "zip":
            _unpack_zip(path, into, budget, where)
        else:
            _unpack_tar(path, into, budget, where)
    except MEMBER_ERRORS as error:
        taken = any(Path(into).rglob("*"))
        budget.notes.append((where, f"the archive is damaged ({type(error).__name__}: {shown(str(error)[:120])}); "
                                    + ("only what came before the damage was unpacked" if taken else
                                       "nothing in it could be unpacked")))
    return True


def _take(budget, where, name):
    """Count one member against the caps; False (and a note, once) when none are left."""
    if budget.members_left <= 0:
        if budget.members_left == 0:
            budget.notes.append((where, f"over {budget.caps.members} members in all: {shown(name)} and the "
                                        "rest were not unpacked"))
            budget.members_left = -1
        return False
    budget.members_left -= 1
    return True


# What reading one damaged or unusual member can raise (zlib, bz2 and lzma have their own errors).
MEMBER_ERRORS = (zipfile.BadZipFile, tarfile.TarError, NotImplementedError, RuntimeError, EOFError, OSError,
                 ValueError, zlib.error, lzma.LZMAError)


def _unpack_zip(path, into, budget, where):
    with open(path, "rb") as f:
        # The central directory is read whole when the archive opens: count its entries first.
        end = zipfile._EndRecData(f)
    if end is not None and end[zipfile._ECD_ENTRIES_TOTAL] > budget.members_left:
        budget.notes.append((where, f"it holds {end[zipfile._ECD_ENTRIES_TOTAL]} members, over what is left of the "
                                    f"cap of {budget.caps.members}: not unpacked"))
        return
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            regular = stat.S_IFMT(info.external_attr >> 16) in (0, stat.S_IFREG)
            if not _member(budget, where, into, info.filename, info.is_dir(), regular, lambda: archive.open(info)):
                return


def _unpack_tar(path, into, budget, where):
    with tarfile.open(path, "r:*") as archive:
        while (member := archive.next()) is not None:
            archive.members = []  # the module keeps every header read: drop them, memory stays flat
            if not _member(budget, where, into, member.name, member.isdir(), member.isreg(),
                           lambda: archive.extractfile(member)):
                return


def _member(budget, where, into, name, is_folder, regular, open_member):
    """Unpack one member under the rules (only regular files, within the caps); False once no more members
    may be read."""
    if not _take(budget, where, name):
        return False
    if is_folder:
        return True
    label = f"{where}/{shown(name)}"
    if not regular:
        budget.notes.append((label, "a link or special file: skipped"))
        return True
    try:
        with open_member() as source:
            _write_member(source, name, into, budget, label)
    except MEMBER_ERRORS as error:
        _damaged(budget, label, into, name, error)
    return True


def _damaged(budget, label, into, name, error):
    relative, _ = member_path(name)
    if relative:
        try:
            os.unlink(os.path.join(into, relative))
        except OSError:
            pass
    budget.notes.append((label, f"cannot be unpacked ({type(error).__name__}: {shown(str(error)[:100])}): skipped"))


def _write_member(source, name, into, budget, label):
    relative, why = member_path(name)
    if relative is None:
        budget.notes.append((label, f"{why}: skipped"))
        return
    target = os.path.join(into, relative)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except OSError as error:
        budget.notes.append((label, f"cannot be written ({error.strerror}; a file and a folder of the same "
                                    "name?): skipped"))
        return
    write_member(source, target, budget, label)


def write_member(source: SupportsRead[bytes], target: str | Path, budget: Budget, label: str) -> bool:
    """Stream the open file `source` to the path `target`, within the caps; a file over them is removed
    and noted. Returns True when written whole."""
    try:
        output = open(target, "xb")  # never through something already there (a link, a file of the same name)
    except OSError as error:
        budget.notes.append((label, f"cannot be written ({error.strerror}; two members of the same name, or a "
                                    "file and a folder?): skipped"))
        return False
    written, cut = 0, ""
    with output:
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > budget.caps.member_bytes:
                cut = f"over {size_in_words(budget.caps.member_bytes)} once unpacked"
            elif written > budget.bytes_left:
                cut = f"the collect reached its cap of {size_in_words(budget.caps.total_bytes)} unpacked"
            if cut:
                break
            output.write(chunk)
    if cut:
        os.unlink(target)
        budget.notes.append((label, f"{cut}: skipped"))
        return False
    budget.bytes_left -= written
    return True


def inner_root(folder: str | Path) -> str | Path:
    """The folder an archive's files are relative to: `folder`, or its one subfolder when that is all
    it holds (an upload of a zipped folder, or an LMS download wrapped in a folder of its name)."""
    entries = [e for e in os.scandir(folder) if not e.name.startswith(("__MACOSX", ".DS_Store"))]
    if len(entries) == 1 and entries[0].is_dir(follow_symlinks=False):
        return os.path.join(folder, entries[0].name)
    return folder


def strip_suffix(name: str) -> str:
    """`name` without the archive suffix it ends in (homework.tar.gz -> homework)."""
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
