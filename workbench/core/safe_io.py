"""File primitives that never overwrite: link-or-verified-copy, exclusive writes, fsyncs.

Every new name is created by `os.link` (which fails when the name is taken) from a file that
is already complete, so a kill at any instant leaves either no file at the name or the
whole file; a copy is made under a temporary `.NAME.wbpart` name first.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench.core.errors import FileOperationError

PARTIAL_SUFFIX = ".wbpart"
# os.link errors that mean "no hard link possible here", so the bytes must be copied.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


def partial_path(dst: Path) -> Path:
    """The temporary name a copy or write to `dst` uses before it is linked into place."""
    return dst.with_name(f".{dst.name}{PARTIAL_SUFFIX}")


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def same_content(a: Path, b: Path) -> bool:
    """True when two files hold the same bytes (the same inode counts)."""
    try:
        if os.path.samefile(a, b):
            return True
        if a.stat().st_size != b.stat().st_size:
            return False
        return sha256_of(a) == sha256_of(b)
    except OSError:
        return False


def same_entry(a: Path, b: Path) -> bool:
    """True when two paths name one directory entry (case-folding disk), not two hard links."""
    try:
        return os.path.samefile(a, b) and os.stat(a).st_nlink < 2
    except OSError:
        return False


def holds(path: Path, data: bytes) -> bool:
    """True when `path` is a file holding exactly `data`."""
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries durable, where the file system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system can fsync a folder
    finally:
        os.close(fd)


@contextmanager
def durable(conn: sqlite3.Connection) -> Iterator[None]:
    """Commits made inside are fsynced, so a journal plan survives a power cut before files move."""
    previous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    conn.execute("PRAGMA synchronous = FULL")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA synchronous = {previous}")


def publish(part: Path, dst: Path) -> None:
    """Give the finished temporary file `part` the name `dst`; FileExistsError if it is taken."""
    try:
        os.link(part, dst)
    except FileExistsError:
        part.unlink(missing_ok=True)
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            part.unlink(missing_ok=True)
            raise
        # No hard links on this file system (FAT, some shares): rename after checking the
        # name is free; only a process racing us in that very instant could be overwritten.
        if os.path.lexists(dst):
            part.unlink(missing_ok=True)
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from exc
        os.rename(part, dst)
    else:
        part.unlink()
    fsync_dir(dst.parent)


def copy_verified(src: Path, dst: Path) -> None:
    """Copy `src` to a temporary name beside `dst`, fsync, verify, then link it into place.

    A copy that does not verify is removed and FileOperationError raised; `src` is untouched.
    """
    part = partial_path(dst)
    part.unlink(missing_ok=True)  # a partial copy of our own from an earlier crash
    try:
        with open(src, "rb") as fin, open(part, "xb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
    except OSError:
        part.unlink(missing_ok=True)  # e.g. the disk is full: give the space back
        raise
    try:
        shutil.copystat(src, part)  # keep the time stamps the grouping reads
    except OSError:
        pass  # some shares refuse permission bits; the bytes are what matter
    if not same_content(src, part):
        part.unlink(missing_ok=True)
        raise FileOperationError(
            f"The copy of {src} to {dst.parent} did not verify (disk full or failing?); "
            "the original was left in place."
        )
    publish(part, dst)


def write_new_file(dst: Path, data: bytes) -> None:
    """Create `dst` holding `data` (temporary name, fsync, link); FileExistsError if taken."""
    part = partial_path(dst)
    part.unlink(missing_ok=True)
    try:
        with open(part, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:
        part.unlink(missing_ok=True)
        raise
    publish(part, dst)


def place(src: Path, dst: Path) -> None:
    """Give `src`'s file the name `dst` as well (link, else verified copy); never replaces `dst`."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        copy_verified(src, dst)  # another device, or no hard links here
    fsync_dir(dst.parent)  # the new name is on disk before the old one goes
