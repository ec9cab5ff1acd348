"""No mutation of a genuine delivery (body, header, signature, structure, case) is ever accepted."""

from __future__ import annotations

import string
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from transactionlink_async import OrganizationToken, TransactionLink, WebhookVerificationError
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

BODY = b'{"workflowId":"0b6c7a52-6d1e-4c3a-9f0e-2f1d8f1e5a77","status":"COMPLETED","n":1}'
# Another genuine body, whose signature the "swap" mutation borrows. It differs from BODY
# early and in many bytes, so no body mutation below (one byte changed, inserted or
# deleted, a prefix, up to 8 bytes appended) can produce it: the pair stays a forgery.
OTHER_BODY = b'{"workflowId":"9f0e2f1d-aaaa-4c3a-0b6c-7a526d1e5a77","status":"FAILED"}'
# Characters a header value could be mutated with; whitespace is left out because
# surrounding whitespace is not part of an HTTP header value.
VALUE_CHARS = st.characters(min_codepoint=33, max_codepoint=126)
B64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    # Module scope: one fake server and one client serve every generated example.
    return "asyncio"


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[TransactionLink, dict[str, str]]]:
    async with FakeTransactionLink() as fake:
        signatures = {
            "b64": fake.webhooks.sign(BODY),
            "raw": fake.webhooks.sign(BODY, b64=False),
            "other": fake.webhooks.sign(OTHER_BODY),
        }
        async with TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl:
            yield tl, signatures


# Positions count from the start, or (negative) from the end, where the signature's
# unused low bits sit.
POSITIONS = st.integers(0, 10_000) | st.integers(-4, -1)
# A header mutation is drawn as a description and applied in the test, where the genuine
# value is known: drawing inside the async test would run Hypothesis's control flow
# (BaseExceptions) in the event loop's runner task.
HEADER_MUTATIONS = st.one_of(
    st.tuples(st.sampled_from(["replace", "insert"]), POSITIONS, VALUE_CHARS),
    st.tuples(st.sampled_from(["delete", "case", "truncate", "bit"]), POSITIONS),
    st.tuples(st.just("parts"), st.lists(st.integers(0, 2), max_size=5)),
    st.tuples(st.just("swap")),
)


def mutate(value: str, other: str, mutation: tuple[object, ...]) -> str:
    """The signature header value, changed as `mutation` says."""
    kind = mutation[0]
    if kind == "parts":
        head, _, signature = value.split(".")
        pieces = [head, "", signature]
        return ".".join(pieces[i] for i in mutation[1])  # type: ignore[attr-defined]
    if kind == "swap":
        # The genuine header with the signature of another body.
        return value.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]
    at = int(mutation[1]) % len(value)  # type: ignore[call-overload]
    if kind == "replace":
        return value[:at] + str(mutation[2]) + value[at + 1 :]
    if kind == "insert":
        return value[:at] + str(mutation[2]) + value[at:]
    if kind == "delete":
        return value[:at] + value[at + 1 :]
    if kind == "case":
        return value[:at] + value[at].swapcase() + value[at + 1 :]
    if kind == "bit":
        # Flip the lowest of the six bits a base64url character stands for.
        index = B64URL.find(value[at])
        changed = value[at] if index < 0 else B64URL[index ^ 1]
        return value[:at] + changed + value[at + 1 :]
    return value[:at]


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append"]))
    at = draw(st.integers(0, len(BODY) - 1))
    if kind == "flip":
        mask = draw(st.integers(1, 255))
        return BODY[:at] + bytes([BODY[at] ^ mask]) + BODY[at + 1 :]
    if kind == "insert":
        return BODY[:at] + bytes([draw(st.integers(0, 255))]) + BODY[at:]
    if kind == "delete":
        return BODY[:at] + BODY[at + 1 :]
    if kind == "truncate":
        return BODY[:at]
    return BODY + draw(st.binary(min_size=1, max_size=8))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# The last character of a 256-byte signature carries 4 unused bits: flipping one must
# not decode to the same signature and pass.
@example(kind="b64", body=None, mutation=("bit", -1))
@example(kind="raw", body=None, mutation=("bit", -1))
# The genuine header with the signature of a body that a body mutation could produce
# would be a genuine delivery, not a forgery: "other" must be out of the mutations' reach.
@example(kind="b64", body=BODY + b" ", mutation=("swap",))
@given(
    kind=st.sampled_from(["b64", "raw"]),
    body=st.none() | mutated_bodies(),
    mutation=st.none() | HEADER_MUTATIONS,
)
async def test_no_mutated_delivery_is_accepted(
    receiver: tuple[TransactionLink, dict[str, str]],
    kind: str,
    body: bytes | None,
    mutation: tuple[object, ...] | None,
) -> None:
    tl, signatures = receiver
    genuine = signatures[kind]
    value = genuine if mutation is None else mutate(genuine, signatures["other"], mutation)
    body = BODY if body is None else body
    if body == BODY and value == genuine:
        return  # nothing was changed
    with pytest.raises(WebhookVerificationError):
        await tl.webhooks.verify({"JWS-SIGNATURE": value}, body)


async def test_the_unmutated_deliveries_verify(
    receiver: tuple[TransactionLink, dict[str, str]],
) -> None:
    tl, signatures = receiver
    for kind in ("b64", "raw"):
        await tl.webhooks.verify({"JWS-SIGNATURE": signatures[kind]}, BODY)
    # The borrowed signature is genuine for its own body: swapping it in is what forges.
    await tl.webhooks.verify({"JWS-SIGNATURE": signatures["other"]}, OTHER_BODY)


@given(body=mutated_bodies())
def test_no_body_mutation_reaches_the_other_body(body: bytes) -> None:
    assert body != OTHER_BODY
