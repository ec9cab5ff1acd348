"""Keys derived from the credentials: opaque names, and tokens sealed so only holders read them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async.coordination._crypto import CredentialKeys

KEY, SECRET = "key_0123456789abcdef", "s3cr3t-value-that-is-long-and-random"


def test_the_same_credentials_give_the_same_name_in_every_process() -> None:
    assert CredentialKeys(KEY, SECRET).name == CredentialKeys(KEY, SECRET).name


def test_the_name_tells_nothing_and_changes_with_either_part() -> None:
    name = CredentialKeys(KEY, SECRET).name
    assert len(name) == 32
    assert int(name, 16) >= 0
    assert KEY not in name
    assert SECRET not in name
    assert CredentialKeys(KEY, SECRET + "x").name != name
    assert CredentialKeys(KEY + "x", SECRET).name != name
    # The length prefix keeps the two parts apart.
    assert CredentialKeys("ab", "c").name != CredentialKeys("a", "bc").name


@given(st.binary(max_size=2000))
def test_a_sealed_token_opens_with_the_same_credentials_and_context_only(plain: bytes) -> None:
    keys = CredentialKeys(KEY, SECRET)
    blob = keys.seal(plain, b"entry#1")
    assert keys.open(blob, b"entry#1") == plain
    assert keys.open(blob, b"entry#2") is None
    assert CredentialKeys(KEY, SECRET + "x").open(blob, b"entry#1") is None


def test_a_tampered_or_truncated_blob_opens_to_nothing() -> None:
    keys = CredentialKeys(KEY, SECRET)
    blob = keys.seal(b"access-token", b"c")
    assert b"access-token" not in blob
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    assert keys.open(flipped, b"c") is None
    assert keys.open(blob[:12], b"c") is None
    assert keys.open(b"", b"c") is None
    assert SECRET not in repr(keys)
