"""tl.webhooks over real sockets: verification with keys from the fake API, events, wake-ups."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from multidict import CIMultiDict
from starlette.datastructures import Headers as StarletteHeaders
from support import FAST_RETRY

from transactionlink_async import (
    ApiKey,
    ClientClosedError,
    OrganizationToken,
    PollPolicy,
    TransactionLink,
    WebhookEvent,
    WebhookKeyUnavailableError,
    WebhookVerificationError,
    WorkflowStatus,
)
from transactionlink_async.testing import FakeTransactionLink
from transactionlink_async.webhooks import Webhooks, event_from_body, receive

pytestmark = pytest.mark.anyio

EVENT = {"workflowId": "w-1", "status": "COMPLETED", "referenceName": "kyc"}
KEY_PATH = "/auth/webhooks/key/*"


async def test_a_valid_delivery_verifies_into_its_event(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    headers, body = fake.webhooks.signed(EVENT)
    event = await tl.webhooks.verify(headers, body)
    assert event == WebhookEvent(
        execution_id="w-1",
        status=WorkflowStatus.COMPLETED,
        payload=EVENT,
        reference_name="kyc",
    )
    assert event.payload == EVENT


async def test_the_exact_body_bytes_are_what_is_verified(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    body = '{ "workflowId" : "w-2",\n  "status":"RUNNING", "note": "žluťoučký" }'.encode()
    headers = {"JWS-SIGNATURE": fake.webhooks.sign(body)}
    event = await tl.webhooks.verify(headers, body)
    assert (event.execution_id, event.status) == ("w-2", WorkflowStatus.RUNNING)
    reformatted = json.dumps(json.loads(body)).encode()
    with pytest.raises(WebhookVerificationError, match="does not match"):
        await tl.webhooks.verify(headers, reformatted)


async def test_an_unencoded_payload_signature_verifies(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    headers, body = fake.webhooks.signed(EVENT, "b64_false")
    assert (await tl.webhooks.verify(headers, body)).execution_id == "w-1"


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ("tampered", "does not match"),
        ("unsigned", "no JWS-SIGNATURE"),
        ("alg_none", "'none'"),
        ("hs256", "'HS256'"),
        ("unknown_kid", "unknown signing key id"),
        ("garbage", "not a detached JWS"),
    ],
)
async def test_forged_and_broken_deliveries_are_rejected(
    fake: FakeTransactionLink, tl: TransactionLink, variant: Any, reason: str
) -> None:
    headers, body = fake.webhooks.signed(EVENT, variant)
    with pytest.raises(WebhookVerificationError, match=reason) as info:
        await tl.webhooks.verify(headers, body)
    assert not isinstance(info.value, WebhookKeyUnavailableError)


async def test_an_altered_header_is_rejected(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    headers, body = fake.webhooks.signed(EVENT)
    head, _, signature = headers["JWS-SIGNATURE"].split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    header["typ"] = "JOSE"
    altered = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    with pytest.raises(WebhookVerificationError, match="does not match"):
        await tl.webhooks.verify({"JWS-SIGNATURE": f"{altered}..{signature}"}, body)


async def test_a_signature_from_another_key_is_rejected(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    body = json.dumps(EVENT).encode()
    old_kid = fake.webhooks.kid
    new_kid = fake.webhooks.rotate_key()
    # Signed with the new key but labelled with the old kid.
    forged = fake.webhooks.sign(body, kid=new_kid).replace(
        fake.webhooks.sign(body, kid=new_kid).split(".")[0],
        fake.webhooks.sign(body, kid=old_kid).split(".")[0],
    )
    with pytest.raises(WebhookVerificationError, match="does not match"):
        await tl.webhooks.verify({"JWS-SIGNATURE": forged}, body)


async def test_a_signed_body_that_is_not_a_json_object_is_rejected(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    for body in (b"[1, 2]", b"not json", b"", b'"text"'):
        headers = {"JWS-SIGNATURE": fake.webhooks.sign(body)}
        with pytest.raises(WebhookVerificationError, match=r"not (a )?JSON"):
            await tl.webhooks.verify(headers, body)


async def test_an_unsigned_body_is_never_parsed(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    headers, _ = fake.webhooks.signed(EVENT)
    # Not JSON, and not signed: the signature check must be what rejects it.
    with pytest.raises(WebhookVerificationError, match="does not match"):
        await tl.webhooks.verify(headers, b"\xff not json")


@pytest.mark.parametrize(
    "shape",
    ["dict_lower", "dict_mixed", "cimultidict", "str_pairs", "bytes_pairs", "starlette"],
)
async def test_any_header_container_and_name_case_is_read(
    fake: FakeTransactionLink, tl: TransactionLink, shape: str
) -> None:
    headers, body = fake.webhooks.signed(EVENT)
    value = headers["JWS-SIGNATURE"]
    raw = [(b"content-type", b"application/json"), (b"jws-signature", value.encode())]
    container: Any = {
        "dict_lower": {"jws-signature": value},
        "dict_mixed": {"Jws-Signature": value, "X-Other": "1"},
        "cimultidict": CIMultiDict([("JWS-SIGNATURE", value)]),
        "str_pairs": [("Content-Type", "application/json"), ("JWS-Signature", value)],
        "bytes_pairs": raw,
        "starlette": StarletteHeaders(raw=raw),
    }[shape]
    assert (await tl.webhooks.verify(container, body)).execution_id == "w-1"


async def test_two_signature_headers_are_rejected(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    headers, body = fake.webhooks.signed(EVENT)
    value = headers["JWS-SIGNATURE"]
    twice = CIMultiDict([("JWS-SIGNATURE", value), ("jws-signature", value)])
    with pytest.raises(WebhookVerificationError, match="2 JWS-SIGNATURE headers"):
        await tl.webhooks.verify(twice, body)


async def test_wrong_argument_types_are_programming_errors(tl: TransactionLink) -> None:
    with pytest.raises(TypeError, match="raw request bytes"):
        await tl.webhooks.verify({"JWS-SIGNATURE": "x..y"}, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="headers must be"):
        await tl.webhooks.verify(42, b"{}")  # type: ignore[arg-type]


async def test_the_key_is_fetched_once_authenticated_as_pem(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    for n in range(5):
        headers, body = fake.webhooks.signed({**EVENT, "n": n})
        await tl.webhooks.verify(headers, body)
    entries = fake.requests("GET", KEY_PATH)
    assert len(entries) == 1
    assert entries[0].path == f"/auth/webhooks/key/{fake.webhooks.kid}"
    assert entries[0].query == "pem=true"
    assert entries[0].headers["Authorization"] == fake.org_token
    assert entries[0].headers["Accept"] == "text/plain"
    assert tl.webhooks.key_fetches == 1


async def test_api_key_credentials_fetch_the_key_with_a_bearer_token(
    fake: FakeTransactionLink,
) -> None:
    async with TransactionLink(ApiKey(fake.api_key, fake.api_secret), base_url=fake.base_url) as tl:
        headers, body = fake.webhooks.signed(EVENT)
        await tl.webhooks.verify(headers, body)
    assert fake.requests("GET", KEY_PATH)[0].headers["Authorization"].startswith("Bearer ")


async def test_concurrent_deliveries_with_a_new_kid_fetch_it_once(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.inject("GET", KEY_PATH, delay=0.1)
    deliveries = [fake.webhooks.signed({**EVENT, "n": n}) for n in range(30)]
    events: list[WebhookEvent] = []

    async def verify(headers: dict[str, str], body: bytes) -> None:
        events.append(await tl.webhooks.verify(headers, body))

    async with anyio.create_task_group() as tg:
        for headers, body in deliveries:
            tg.start_soon(verify, headers, body)
    assert len(events) == 30
    assert fake.count("GET", KEY_PATH) == 1


async def test_a_rotated_key_is_fetched_and_old_kids_keep_working(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    old = fake.webhooks.signed(EVENT)
    await tl.webhooks.verify(*old)
    fake.webhooks.rotate_key()
    new = fake.webhooks.signed(EVENT)
    assert new[0]["JWS-SIGNATURE"] != old[0]["JWS-SIGNATURE"]
    await tl.webhooks.verify(*new)
    await tl.webhooks.verify(*old)
    assert fake.count("GET", KEY_PATH) == 2


async def test_an_unknown_kid_is_asked_about_once_for_a_while(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    headers, body = fake.webhooks.signed(EVENT, "unknown_kid")
    for _ in range(5):
        with pytest.raises(WebhookVerificationError, match="unknown signing key id"):
            await tl.webhooks.verify(headers, body)
    assert fake.count("GET", KEY_PATH) == 1


async def test_a_flood_of_made_up_kids_reaches_the_api_a_bounded_number_of_times(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    outcomes: list[type[Exception]] = []
    for _ in range(40):
        headers, body = fake.webhooks.signed(EVENT, "unknown_kid")
        try:
            await tl.webhooks.verify(headers, body)
        except WebhookVerificationError as exc:
            outcomes.append(type(exc))
    assert len(outcomes) == 40
    assert fake.count("GET", KEY_PATH) == 8  # the default burst
    assert outcomes.count(WebhookKeyUnavailableError) == 32


async def test_known_keys_verify_during_a_flood_of_made_up_kids(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    await tl.webhooks.verify(*fake.webhooks.signed(EVENT))
    for _ in range(20):
        with pytest.raises(WebhookVerificationError):
            await tl.webhooks.verify(*fake.webhooks.signed(EVENT, "unknown_kid"))
    assert (await tl.webhooks.verify(*fake.webhooks.signed(EVENT))).execution_id == "w-1"


async def test_a_key_endpoint_outage_is_key_unavailable(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.inject("GET", KEY_PATH, status=500, times=None)
    headers, body = fake.webhooks.signed(EVENT)
    with pytest.raises(WebhookKeyUnavailableError, match="sender should retry"):
        await tl.webhooks.verify(headers, body)
    fake.clear_faults()
    assert (await tl.webhooks.verify(headers, body)).execution_id == "w-1"


async def test_a_slow_key_endpoint_is_key_unavailable_within_the_fetch_timeout(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.inject("GET", KEY_PATH, delay=5.0)
    webhooks = Webhooks(tl._handle, fetch_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(WebhookKeyUnavailableError):
        await webhooks.verify(*fake.webhooks.signed(EVENT))
    assert time.monotonic() - started < 1.0


async def test_rejections_do_not_echo_credentials_or_the_whole_header(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.inject("GET", KEY_PATH, status=403, times=None)
    headers, body = fake.webhooks.signed(EVENT)
    with pytest.raises(WebhookVerificationError) as info:
        await tl.webhooks.verify(headers, body)
    text = f"{info.value!s} {info.value!r}"
    assert fake.org_token not in text
    assert headers["JWS-SIGNATURE"] not in text
    assert headers["JWS-SIGNATURE"].split(".")[-1] not in text


async def test_handle_wakes_the_listeners_of_the_execution(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    headers, body = fake.webhooks.signed(EVENT)
    with tl._handle.wakeups.listen("w-1") as woken, tl._handle.wakeups.listen("other") as not_woken:
        event = await tl.webhooks.handle(headers, body)
        assert woken.is_set()
        assert not not_woken.is_set()
    assert event.execution_id == "w-1"
    # Again, and for an execution nobody waits on: harmless.
    await tl.webhooks.handle(headers, body)
    await tl.webhooks.handle(*fake.webhooks.signed({"workflowId": "nobody"}))


async def test_a_body_over_max_body_is_refused_before_any_check(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    headers, body = fake.webhooks.signed({**EVENT, "pad": "x" * (1024 * 1024)})
    with pytest.raises(WebhookVerificationError, match="over max_body=1048576"):
        await tl.webhooks.verify(headers, body)
    with pytest.raises(WebhookVerificationError, match="over max_body=1048576"):
        await tl.webhooks.handle(headers, body)
    assert await receive(tl, headers, body) == (413, "body too large")
    assert fake.count("GET", KEY_PATH) == 0
    # A larger limit, when the application expects such deliveries.
    event = await tl.webhooks.verify(headers, body, max_body=2 * 1024 * 1024)
    assert event.execution_id == "w-1"
    assert await receive(tl, headers, body, max_body=2 * 1024 * 1024) == (204, "")
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_body"):
            await tl.webhooks.verify(headers, body, max_body=bad)  # type: ignore[arg-type]


async def test_handle_refuses_on_a_closed_client_even_with_the_key_cached(
    fake: FakeTransactionLink,
) -> None:
    tl = TransactionLink(
        OrganizationToken(fake.org_token), base_url=fake.base_url, retry=FAST_RETRY
    )
    headers, body = fake.webhooks.signed(EVENT)
    await tl.webhooks.handle(headers, body)
    await tl.aclose()
    with tl._handle.wakeups.listen("w-1") as woken:
        with pytest.raises(ClientClosedError):
            await tl.webhooks.handle(headers, body)
        assert not woken.is_set()
    # verify() only checks the signature: with the key cached it needs no open client.
    assert (await tl.webhooks.verify(headers, body)).execution_id == "w-1"


async def test_handle_wakes_nobody_when_verification_fails(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    headers, body = fake.webhooks.signed(EVENT, "tampered")
    with tl._handle.wakeups.listen("w-1") as woken:
        with pytest.raises(WebhookVerificationError):
            await tl.webhooks.handle(headers, body)
        assert not woken.is_set()


async def test_a_webhook_ends_a_long_poll_wait_with_one_confirming_get(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.define_workflow("slow", statuses=("RUNNING",))
    execution = await tl.workflows.initialise(workflow_definition_id="slow", locale="en")
    path = f"/workflows/{execution.id}"
    outcome: dict[str, Any] = {}

    async def wait() -> None:
        outcome["execution"] = await tl.workflows.wait_for_completion(
            execution.id, timeout=10, poll=PollPolicy(initial=30, maximum=30, jitter=0)
        )
        outcome["at"] = time.monotonic()

    with anyio.fail_after(8):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            # Until the waiter listens with no request out: the fake's state has no event.
            while tl._handle.wakeups.waiting(execution.id) == 0 or fake.in_flight("GET", path):  # noqa: ASYNC110
                await anyio.sleep(0.01)
            await anyio.sleep(0.1)
            gets_before = fake.count("GET", path)
            fake.set_status(execution.id, "COMPLETED")
            headers, body = fake.webhooks.signed(
                {"workflowId": execution.id, "status": "COMPLETED"}
            )
            handled = time.monotonic()
            await tl.webhooks.handle(headers, body)
    assert outcome["at"] - handled < 0.5
    assert outcome["execution"].status is WorkflowStatus.COMPLETED
    assert fake.count("GET", path) == gets_before + 1


def test_events_find_the_execution_id_and_status_where_the_payload_keeps_them() -> None:
    def event(payload: dict[str, Any]) -> tuple[str | None, Any]:
        parsed = event_from_body(json.dumps(payload).encode())
        return parsed.execution_id, parsed.status

    assert event({"workflowId": "a", "status": "FAILED"}) == ("a", WorkflowStatus.FAILED)
    assert event({"workflowExecutionId": "b"}) == ("b", None)
    assert event({"executionId": "c", "status": "SHINY_NEW"}) == ("c", "SHINY_NEW")
    assert event({"id": "d", "status": 5}) == ("d", None)
    # The specific names win over a plain id, which may be the event's own.
    assert event({"id": "evt-1", "workflowId": "e"}) == ("e", None)
    assert event({"id": "evt-1", "data": {"workflowId": "f"}}) == ("f", None)
    assert event({"workflow": {"id": "g", "status": "X"}}) == ("g", "X")
    assert event({"data": {"id": "not-an-execution"}}) == (None, None)
    assert event({"workflowId": 17, "executionId": "h"}) == ("h", None)
    assert event({"referenceName": "kyc"}) == (None, None)


def test_the_core_import_needs_neither_cryptography_nor_starlette() -> None:
    code = (
        "import sys\n"
        "for name in ('cryptography', 'starlette', 'fastapi'):\n"
        "    sys.modules[name] = None\n"
        "import transactionlink_async, transactionlink_async.webhooks as w\n"
        "try:\n"
        "    w.starlette_endpoint(None)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert "pip install 'cryptography>=42'" in done.stdout


async def test_verify_without_cryptography_says_what_to_install(
    fake: FakeTransactionLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, body = fake.webhooks.signed(EVENT)
    async with TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl:
        monkeypatch.setitem(sys.modules, "cryptography", None)
        with pytest.raises(ImportError, match=r"pip install 'cryptography>=42'"):
            await tl.webhooks.verify(headers, body)
