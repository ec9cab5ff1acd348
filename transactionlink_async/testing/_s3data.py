"""Object bodies for the fake S3: stored bytes, and JSON documents generated on the fly."""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Iterator
from typing import Protocol

__all__ = ["Body", "GeneratedJson", "StoredBytes", "generated_md5"]

# How much each piece handed to the socket holds: big enough that per-write overhead
# does not matter, small enough to keep the server's memory flat.
DEFAULT_PIECE = 1024 * 1024


class Body(Protocol):
    """What an object's bytes look like to the server: a size and any range of them."""

    @property
    def size(self) -> int: ...

    def read(self, start: int, stop: int, piece: int = DEFAULT_PIECE) -> Iterator[bytes]:
        """The bytes [start, stop) in pieces of at most `piece` bytes."""
        ...

    def md5_hex(self) -> str: ...


class StoredBytes:
    """An object held in memory as it was put."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, start: int, stop: int, piece: int = DEFAULT_PIECE) -> Iterator[bytes]:
        view = memoryview(self.data)
        for offset in range(start, stop, piece):
            yield bytes(view[offset : min(stop, offset + piece)])

    def md5_hex(self) -> str:
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()


_PREFIX = b'{"records": ['
_FINAL = b'{"end": true}'
_SUFFIX = b"]}"
# One block: a header record carrying the block number, then the seed's template records.
_BLOCK_RECORDS = 500
_HEADER_WIDTH = 32
_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")


def _record(rng: random.Random, seed: int, index: int) -> bytes:
    cents = rng.randrange(10**8)
    rate = rng.randrange(10**6)
    name = _NAMES[rng.randrange(len(_NAMES))]
    active = "true" if rng.random() < 0.5 else "false"
    # Decimals written with trailing zeros on purpose: a float parser loses them.
    return (
        f'{{"n": {index}, "id": "r{seed}-{index}", "amount": {cents // 100}.{cents % 100:02d}, '
        f'"rate": 0.{rate:06d}, "name": "{name} O\'Neil", "active": {active}, '
        f'"tags": ["kyc", "aml"]}}'
    ).encode()


@functools.lru_cache(maxsize=16)
def _template(seed: int) -> tuple[bytes, tuple[int, ...]]:
    """The seed's block of records (each followed by a comma) and where each one ends."""
    rng = random.Random(seed)
    records = [_record(rng, seed, index) + b"," for index in range(_BLOCK_RECORDS)]
    ends: list[int] = []
    total = 0
    for record in records:
        total += len(record)
        ends.append(total)
    return b"".join(records), tuple(ends)


def _header(block: int) -> bytes:
    text = f'{{"block": {block}'.encode()
    # JSON allows whitespace before the brace: every header is the same width.
    return text + b" " * (_HEADER_WIDTH - len(text) - 2) + b"},"


class GeneratedJson:
    """`{"records": [...]}` of exactly `size` bytes, made on the fly from a seed.

    Any byte range costs only the blocks it touches, so multi-GB objects take no memory.
    Items under "records.item": per block one `{"block": n}` and 500 records; then the
    records that fit in the remainder, and a final `{"end": true}`.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        fixed = len(_PREFIX) + len(_FINAL) + len(_SUFFIX)
        if size < fixed:
            raise ValueError(f"a generated JSON document needs at least {fixed} bytes")
        self._size = size
        self.seed = seed
        self._template, ends = _template(seed)
        self._block_size = _HEADER_WIDTH + len(self._template)
        self._blocks = (size - fixed) // self._block_size
        remainder = size - fixed - self._blocks * self._block_size
        fitting = sum(1 for end in ends if end <= remainder)
        used = ends[fitting - 1] if fitting else 0
        self._tail = self._template[:used] + b" " * (remainder - used) + _FINAL + _SUFFIX
        self._tail_start = len(_PREFIX) + self._blocks * self._block_size
        self.item_count: int = self._blocks * (_BLOCK_RECORDS + 1) + fitting + 1

    @property
    def size(self) -> int:
        return self._size

    def _block(self, index: int) -> bytes:
        return _header(index) + self._template

    def _pieces(self, start: int, stop: int) -> Iterator[bytes]:
        if start < len(_PREFIX):
            yield _PREFIX[start : min(stop, len(_PREFIX))]
            start = len(_PREFIX)
        while start < min(stop, self._tail_start):
            index, within = divmod(start - len(_PREFIX), self._block_size)
            block = self._block(index)
            end = min(self._block_size, within + stop - start)
            yield block[within:end] if (within, end) != (0, self._block_size) else block
            start += end - within
        if start < stop:
            yield self._tail[start - self._tail_start : stop - self._tail_start]

    def read(self, start: int, stop: int, piece: int = DEFAULT_PIECE) -> Iterator[bytes]:
        stop = min(stop, self._size)
        batch: list[bytes] = []
        held = 0
        for part in self._pieces(start, stop):
            while part:
                take = part[: piece - held]
                part = part[len(take) :]
                batch.append(take)
                held += len(take)
                if held >= piece:
                    yield b"".join(batch)
                    batch, held = [], 0
        if batch:
            yield b"".join(batch)

    def md5_hex(self) -> str:
        return generated_md5(self._size, self.seed)


@functools.lru_cache(maxsize=64)
def generated_md5(size: int, seed: int) -> str:
    """The MD5 of a generated document, computed by streaming it once and then remembered."""
    digest = hashlib.md5(usedforsecurity=False)
    for piece in GeneratedJson(size, seed).read(0, size, 4 * DEFAULT_PIECE):
        digest.update(piece)
    return digest.hexdigest()
