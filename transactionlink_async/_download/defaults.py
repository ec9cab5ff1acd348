"""Default sizes and limits of results, apart so that signatures can name them cheaply."""

from __future__ import annotations

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_RESULT_BYTES",
    "DEFAULT_WRITE_SIZE",
]

DEFAULT_MAX_RESULT_BYTES = 64 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 256 * 1024
DEFAULT_MAX_ATTEMPTS = 5
#: Bytes handed to the disk per worker-thread hop: large, so file I/O never dominates.
DEFAULT_WRITE_SIZE = 4 * 1024 * 1024
