"""Which webhook news travels between clients, and its messages."""

from __future__ import annotations

import pytest

from transactionlink_async.coordination._news import decode_news, encode_news, worth_announcing
from transactionlink_async.models import WorkflowStatus


@pytest.mark.parametrize(
    ("status", "worth"),
    [
        ("COMPLETED", True),
        (WorkflowStatus.FAILED, True),
        ("CANCELLED", True),
        (None, True),  # no status said: the waits confirm with a GET
        ("SOMETHING_NEW", True),  # unknown: might be final
        ("RUNNING", False),
        ("AWAITING", False),
        (WorkflowStatus.PAUSED, False),
    ],
)
def test_only_news_that_may_end_a_wait_is_passed_on(status: str | None, worth: bool) -> None:
    assert worth_announcing("exec-1", status) is worth


@pytest.mark.parametrize("execution_id", ["", "a b", "a\nb", "x" * 201])
def test_ids_unfit_for_a_key_name_are_not_passed_on(execution_id: str) -> None:
    assert not worth_announcing(execution_id, "COMPLETED")


def test_a_message_reads_back_and_garbage_is_refused() -> None:
    assert decode_news(encode_news("exec-1", "COMPLETED", "me")) == ("exec-1", "me")
    for garbage in (b"", b"[]", b'{"id": 3, "from": "x"}', b'{"id": "a b", "from": "x"}'):
        with pytest.raises((ValueError, TypeError, AttributeError)):
            decode_news(garbage)
