"""Keeping freed body memory in the C heap, instead of mapping and faulting it in anew."""

from __future__ import annotations

__all__ = ["keep_freed_batches", "keep_freed_reads"]

# glibc adapts its mmap threshold only to a freed mapping of at most 32 MiB
# (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit builds); a block's mapping is its size plus a
# header, rounded up to a page, so the largest block asked for stays this far below.
_ADAPTS_UP_TO = 32 * 1024 * 1024 - 64 * 1024
# asyncio reads a socket into a fresh buffer of up to 256 KiB: a threshold above that
# keeps each read's buffer in the heap.
_READS = 1024 * 1024

_kept = 0


def keep_freed_batches(batch_size: int) -> None:
    """Let the allocator keep the freed memory of a few batches for the next ones.

    glibc hands freed memory at the top of its heap back to the system once more than its
    trim threshold lies free there: 128 KiB at start, twice the mmap threshold once that
    has adapted. A download frees a written batch (megabytes of chunks) at once, so each
    batch's memory went back, and the next batch's bytes were faulted in afresh, one page
    at a time: some 80,000 page faults per GiB, a fifth of a download's time on one core.
    Freeing one mapped block raises the mmap threshold to its size (glibc's own dynamic
    threshold: freeing a large buffer anywhere in the process does the same). With a
    block of two batches, up to four batches of freed memory stay in the process's heap
    for good, for later allocations to reuse. The block is never touched (calloc's zero
    pages cost no faults); this is done again only for a larger batch size than before,
    and elsewhere than glibc it does nothing.
    """
    _raise_threshold(min(2 * batch_size, _ADAPTS_UP_TO))


def keep_freed_reads() -> None:
    """Keep each socket read's buffer in the heap: no mapping, no fresh pages per answer.

    Above glibc's starting mmap threshold (128 KiB), the 256 KiB buffer asyncio reads a
    socket into is a mapping of its own: mapped, shrunk to the bytes read and unmapped
    for every answer, three system calls and fresh pages each time, which doubled the
    kernel's share of a call's CPU. Raising the threshold to 1 MiB keeps them in the
    heap, at the cost of up to 2 MiB of freed memory the heap may keep.
    """
    _raise_threshold(_READS)


def _raise_threshold(size: int) -> None:
    global _kept
    if size <= _kept:
        return
    _kept = size
    block = bytes(size)
    del block
