"""Reading untrusted input files and writing outputs without destroying anything.

Inputs must be regular files no larger than a stated bound, checked with
``os.stat`` before anything is opened (a FIFO would block ``open``, ``/dev/zero``
never ends). Outputs are refused when they resolve to an input (symlinks, ``..``,
hard links by device and inode) or name something that is not a regular file,
and are written to a temporary file in the target directory that is synced to
disk and renamed into place only once complete (a crash leaves the old file or
the new one, never a torn one); its mode follows the umask like any new file.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from .errors import InputFileError, OutputPathError

MiB, GiB = 1 << 20, 1 << 30
MAX_PROTOTXT_BYTES = 64 * MiB  # real deploy prototxts are kilobytes; 100k-layer chains ~10 MB
# A caffemodel is memory-mapped (its blobs are never read into memory), so its size is bounded by
# what a disk holds, not by memory; the part that goes through protobuf is bounded on its own
# (MAX_NET_BYTES). ONNX files (validate) are read whole: protobuf's limit for one message.
MAX_CAFFEMODEL_BYTES = 64 * GiB
MAX_ONNX_BYTES = 2 * GiB - 1
MAX_NET_BYTES = 256 * MiB  # a caffemodel's layers and parameters without the blobs' data
MAX_ARRAY_BYTES = 4 * GiB  # one .npy/.npz/.binaryproto input


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_input_file(path: str | Path, what: str, limit: int) -> os.stat_result:
    """The stat of ``path`` if it is a regular file of at most ``limit`` bytes, else InputFileError."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputFileError(f"{path}: cannot read {what}: the file does not exist") from None
    except OSError as e:
        raise InputFileError(f"{path}: cannot read {what}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(f"{path}: cannot read {what}: it is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise InputFileError(f"{path}: {what} is {st.st_size:,} bytes, over the limit of {limit:,} bytes")
    return st


def open_regular(path: str | Path) -> tuple[int, os.stat_result]:
    """A read-only descriptor of ``path`` and its fstat; OSError (EINVAL) unless it is a regular file.

    O_NONBLOCK: should the path have become a FIFO since a caller's stat, open does not wait.
    """
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_input_bytes(path: str | Path, what: str, limit: int) -> bytes:
    """The whole of a regular input file, refusing FIFOs, devices, directories and files over ``limit``."""
    check_input_file(path, what, limit)
    try:
        fd, st = open_regular(path)
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise InputFileError(f"{path}: {what} changed while being opened; refusing it") from None
        raise InputFileError(f"{path}: cannot read {what}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if st.st_size > limit:
            raise InputFileError(f"{path}: {what} changed while being opened; refusing it")
        data = f.read(st.st_size + 1)  # read(n) allocates n bytes up front: never the limit itself
    if len(data) != st.st_size:
        raise InputFileError(f"{path}: {what} changed size while being read; refusing it")
    return data


def check_output_path(output: str | Path, inputs: Iterable[str | Path | None] = (), what: str = "output") -> Path:
    """Refuses an output that is (or resolves to) an input, is not a regular file, or cannot be created."""
    out = Path(output)
    if str(output) == "" or out.name in ("", ".", ".."):
        raise OutputPathError(f"{what} path {str(output)!r} names a directory, not a file")
    parent = out.parent
    try:
        pst = os.stat(parent)
    except OSError as e:
        raise OutputPathError(f"{what} {output}: directory {parent} {_missing(e)}") from None
    if not stat.S_ISDIR(pst.st_mode):
        raise OutputPathError(f"{what} {output}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {output}: no permission to create files in {parent}")
    ost = _stat_or_none(out)
    if ost is not None and not stat.S_ISREG(ost.st_mode):
        raise OutputPathError(f"{what} {output} exists and is {_kind(ost.st_mode)}; refusing to replace it")
    real = os.path.realpath(out)
    for item in inputs:
        if item is None:
            continue
        ist = _stat_or_none(Path(item))
        same_file = ost is not None and ist is not None and (ost.st_dev, ost.st_ino) == (ist.st_dev, ist.st_ino)
        if same_file or os.path.realpath(item) == real:
            raise OutputPathError(f"{what} {output} is the input {item}; refusing to overwrite an input")
    return out


def _missing(e: OSError) -> str:
    return "does not exist" if isinstance(e, FileNotFoundError) else f"cannot be used: {e.strerror}"


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sync(sync, fd: int) -> None:
    try:
        sync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EROFS):  # filesystems that cannot sync
            raise


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:  # e.g. a directory we may write but not read: the file is written all the same
        return
    try:
        _sync(os.fsync, fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """A file object for ``path``'s content; renamed into place only if the block completes.

    On any exception (KeyboardInterrupt included) the temporary file is removed and
    ``path`` is untouched.
    """
    path = Path(path)
    check_output_path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as e:
        raise OutputPathError(f"cannot create a file next to {path}: {e.strerror}") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a user's new file follows the umask
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            _sync(os.fdatasync, f.fileno())  # on disk before it takes the name: a crash leaves old or new
        check_output_path(path)  # nothing non-regular appeared there meanwhile
        os.replace(tmp, path)
        _sync_directory(path.parent)  # and the rename itself
    except BaseException as e:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise OutputPathError(f"cannot write {path}: {e.strerror or e}") from None
        raise
