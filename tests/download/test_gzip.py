"""Gzip bodies fed in pieces: every member read, each one checked to its end."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactionlink_async._download.gzip import Gunzip, GzipError


def inflate(body: bytes, feed: int, limit: int) -> bytes:
    gunzip = Gunzip()
    out = []
    for start in range(0, len(body), feed):
        gunzip.feed(body[start : start + feed])
        while piece := gunzip.read(limit):
            assert len(piece) <= limit
            out.append(piece)
    gunzip.close()
    return b"".join(out)


@settings(max_examples=150, deadline=None)
@given(
    members=st.lists(
        st.tuples(st.binary(max_size=3000), st.integers(1, 60)), min_size=1, max_size=3
    ),
    padding=st.integers(0, 20),
    feed=st.integers(1, 5000),
    limit=st.integers(1, 5000),
)
def test_every_member_is_read_whatever_the_piece_sizes(
    members: list[tuple[bytes, int]], padding: int, feed: int, limit: int
) -> None:
    # Repeated data inflates far beyond its size: output stops at `limit` mid-stream.
    plain = [data * times for data, times in members]
    body = b"".join(gzip.compress(p) + b"\0" * padding for p in plain)
    assert inflate(body, feed, limit) == b"".join(plain) == gzip.decompress(body)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (gzip.compress(b'{"a":[1,2,3]}')[:-8], "cut short"),  # the trailer is missing
        (gzip.compress(b"x" * 5000)[:20], "cut short"),
        (gzip.compress(b'{"a":1}') + gzip.compress(b"more")[:-1], "cut short"),
        (b"", "cut short"),
        (gzip.compress(b'{"a":1}') + b"garbage", "not valid gzip"),
        (b"plain text", "not valid gzip"),
    ],
)
def test_a_cut_or_broken_body_is_an_error(body: bytes, problem: str) -> None:
    with pytest.raises(GzipError, match=problem):
        inflate(body, 7, 10)
