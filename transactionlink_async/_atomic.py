"""Atomic file writes: a temporary file beside the destination, renamed over it at the end."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import anyio

__all__ = ["AtomicFile"]


class AtomicFile:
    """A hidden temporary file in the destination's folder; `commit` renames it into place.

    Until `commit`, the destination is untouched; `discard` removes the temporary file.
    The synchronous methods do blocking I/O: call them in a worker thread.
    """

    def __init__(self, destination: Path, temporary: Path, fd: int) -> None:
        self.destination = destination
        self.temporary = temporary
        self._fd: int | None = fd
        self._renamed = False

    @classmethod
    async def create(cls, destination: str | os.PathLike[str]) -> AtomicFile:
        return await anyio.to_thread.run_sync(cls._create, Path(destination))

    @classmethod
    def _create(cls, destination: Path) -> AtomicFile:
        if destination.is_dir():
            raise IsADirectoryError(f"{destination} is a folder; give the path of a file to write")
        folder = destination.parent
        # Same folder, so the final rename stays on one file system and is atomic.
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{destination.name}.", suffix=".part")
        return cls(destination, Path(name), fd)

    def _descriptor(self) -> int:
        if self._fd is None:
            raise ValueError("the file is already committed or discarded")
        return self._fd

    def write(self, chunks: Sequence[bytes]) -> int:
        """Append `chunks`; the number of bytes written."""
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
        fd = self._descriptor()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)

    def commit(self) -> None:
        """Flush to disk, rename over the destination, and make the rename itself durable."""
        fd = self._descriptor()
        os.fsync(fd)
        self._fd = None
        os.close(fd)
        os.replace(self.temporary, self.destination)
        self._renamed = True
        _fsync_folder(self.destination.parent)

    def discard(self) -> None:
        """Close and remove the temporary file; safe to call at any time, twice too."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if not self._renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temporary)


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a folder for fsync; NTFS journals the rename itself
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
