"""Keeping a download's freed batches in the C heap, instead of faulting them in anew."""

from __future__ import annotations

__all__ = ["keep_freed_batches"]

# The largest size glibc adapts its mmap threshold to (DEFAULT_MMAP_THRESHOLD_MAX on
# 64-bit builds): freeing a larger mapped block leaves the threshold as it was.
_ADAPTS_UP_TO = 32 * 1024 * 1024

_kept = 0


def keep_freed_batches(batch_size: int) -> None:
    """Let the allocator keep about two batches of freed memory for the next ones.

    glibc hands freed memory at the top of its heap back to the system once more than
    twice its mmap threshold (128 KiB at start) lies free there, and a download frees a
    written batch (megabytes of chunks) at once: each batch's memory went back, and the
    next batch's bytes were faulted in afresh, one page at a time. That was some 80,000
    page faults per GiB, a fifth of a download's time on one core. Freeing one mapped
    block raises the threshold to its size (glibc's own dynamic threshold: freeing a
    large buffer anywhere in the process does the same), so about two batches of freed
    memory stay in the heap. The block is never touched (calloc's zero pages cost no
    faults); this is done once per process and batch size, and elsewhere than glibc it
    does nothing.
    """
    global _kept
    size = min(2 * batch_size, _ADAPTS_UP_TO)
    if size <= _kept:
        return
    _kept = size
    block = bytes(size)
    del block
