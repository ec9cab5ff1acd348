"""Atomic file writes: a temporary file beside the destination, renamed over it at the end."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._threads import run_blocking

__all__ = ["AtomicFile", "temporary_prefix"]

# The temporary name is "." + name + "." + random + ".part": this much beside the name
# (mkstemp's random part is 8 characters; room is left for a longer one).
_TEMPORARY_EXTRA = len(".") + len(".") + 16 + len(".part")
#: File name limit, in bytes, where the file system does not say.
_DEFAULT_NAME_MAX = 255


class AtomicFile:
    """A hidden temporary file in the destination's folder; `commit` renames it into place.

    Until `commit`, the destination is untouched; `discard` removes the temporary file.
    `write` and `truncate` do blocking I/O: run them in a worker thread (`_threads`). Each
    operation holds a lock, so `discard` never closes the descriptor under a running write.
    """

    def __init__(self, destination: Path, temporary: Path, fd: int) -> None:
        self.destination = destination
        self.temporary = temporary
        self._fd: int | None = fd
        # Renamed into place or discarded: nothing more to do with the temporary file.
        self._finished = False
        self._lock = threading.Lock()

    @classmethod
    async def create(cls, destination: str | os.PathLike[str]) -> AtomicFile:
        # A cancel during the creation still removes the file it made.
        return await run_blocking(cls._create, Path(destination), undo=AtomicFile._discard)

    @classmethod
    def _create(cls, destination: Path) -> AtomicFile:
        if destination.is_dir():
            raise IsADirectoryError(f"{destination} is a folder; give the path of a file to write")
        folder = destination.parent
        with _about(destination):
            # Same folder, so the final rename stays on one file system and is atomic.
            prefix = temporary_prefix(destination.name, _name_max(folder))
            fd, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".part")
        return cls(destination, Path(name), fd)

    def _descriptor(self) -> int:
        if self._fd is None:
            raise ValueError("the file is already committed or discarded")
        return self._fd

    def write(self, chunks: Sequence[bytes]) -> int:
        """Append `chunks`; the number of bytes written."""
        with self._lock, _about(self.destination):
            fd = self._descriptor()
            written = 0
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    done = os.write(fd, view)
                    view = view[done:]
                written += len(chunk)
            return written

    def truncate(self) -> None:
        """Empty the file, to write it again from the start."""
        with self._lock, _about(self.destination):
            fd = self._descriptor()
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)

    async def commit(self) -> None:
        """Flush to disk, rename over the destination, and make the rename itself durable.

        A cancel while the bytes are flushed waits for the flush, then leaves the
        destination untouched. A cancel that arrives during the rename itself waits for
        it too: the destination then holds the complete file though the caller sees the
        cancel (a whole, verified file; never a partial one).
        """
        await run_blocking(self._flush)
        await run_blocking(self._rename)

    def _flush(self) -> None:
        with self._lock, _about(self.destination):
            fd = self._descriptor()
            os.fsync(fd)
            self._fd = None
            os.close(fd)

    def _rename(self) -> None:
        with self._lock, _about(self.destination):
            if self._finished:
                raise ValueError("the file is already committed or discarded")
            os.replace(self.temporary, self.destination)
            self._finished = True
            _fsync_folder(self.destination.parent)

    async def discard(self) -> None:
        """Close and remove the temporary file; safe to call at any time, twice too."""
        await run_blocking(self._discard)

    def _discard(self) -> None:
        # The lock waits out any operation still running in another thread.
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if not self._finished:
                self._finished = True
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.temporary)


def temporary_prefix(name: str, name_max: int) -> str:
    """The temporary file's name before its random part: "." + `name` (shortened if need
    be) + ".", so that the whole temporary name fits the file system's `name_max` bytes."""
    budget = max(1, name_max - _TEMPORARY_EXTRA)
    while len(os.fsencode(name)) > budget:
        name = name[:-1]
    return f".{name}."


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, ValueError, OSError):  # no pathconf (Windows), or no folder
        return _DEFAULT_NAME_MAX


@contextlib.contextmanager
def _about(destination: Path) -> Iterator[None]:
    """An OSError about the hidden temporary file, told as one about `destination`.

    The user gave `destination`; a message naming a ".name.random.part" file they never
    heard of would send them looking for the wrong thing.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno is None:
            raise
        # OSError(errno, ...) picks the subclass (FileNotFoundError, PermissionError...).
        raise OSError(exc.errno, exc.strerror, os.fspath(destination)) from None


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a folder for fsync; NTFS journals the rename itself
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
