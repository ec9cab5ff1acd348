"""What a 429 tells of an API's token bucket: its rate, from the sends that drained it."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["limit_from_drain"]

#: Fewer sends than this between two 429s say too little to estimate anything.
MIN_SENDS = 20


def limit_from_drain(
    sends: Sequence[float],
    *,
    slot: float,
    first_accepted: int,
    first_elapsed: float,
    pause: float,
    last_share: float = 1.0,
) -> float | None:
    """The rate R of a token bucket that these sends (counts per `slot` seconds, since the
    end of the last pause) emptied exactly when the last of them was refused.

    A token bucket lets through its rate and, on top, what it holds: the sends above R
    drained it. It was empty at the previous 429 and refilled during the `pause`, up to
    its burst. The burst shows at the very first 429: `first_accepted` launches got
    through in the `first_elapsed` seconds before it, that is the burst plus R times
    those seconds. So R is where the excess of the sends over R equals
    min(burst, R x pause). The counts per slot round it: a rate of a few sends per slot
    is read to within a send per slot. None when the sends are too few to say.

    The last slot may end early, at the refused send (those after it met an empty
    bucket and say nothing): its count is what came before, over `last_share` of a slot.
    """
    if sum(sends) < MIN_SENDS:
        return None
    widths = [1.0] * (len(sends) - 1) + [min(1.0, max(0.0, last_share))]

    def excess(rate: float) -> float:
        allowed = rate * slot
        return sum(
            count - allowed * width
            for count, width in zip(sends, widths, strict=True)
            if count > allowed * width
        )

    def drained(rate: float) -> float:
        burst = max(1.0, first_accepted - rate * first_elapsed)
        return min(burst, rate * pause)

    # The excess falls as the rate grows and the drain does not: bisection finds where
    # they meet.
    low, high = (
        0.0,
        max(count / width for count, width in zip(sends, widths, strict=True) if width) / slot,
    )
    for _ in range(50):
        middle = (low + high) / 2
        if excess(middle) > drained(middle):
            low = middle
        else:
            high = middle
    return high
