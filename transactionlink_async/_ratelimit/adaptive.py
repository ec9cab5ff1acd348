"""AdaptiveRate: a request rate learned from 429s (slow start, then CUBIC); pure, clock given."""

from __future__ import annotations

import math
from collections import deque

from .bucket import Bucket, take_token
from .cubic import MAX_RATE, Cubic, cubic_curve, cubic_rate
from .estimate import limit_from_drain
from .meter import EventCounter

__all__ = ["AdaptiveRate"]

#: After a throttle the rate restarts at this share of the best estimate of the limit...
BETA = 0.96
#: ...and climbs back to this share of it, where it stays: the estimate is read from
#: whole sends per slot, and a rate even 1 % above the API's own drains its burst in
#: seconds, each 429 then costing a whole Retry-After of nothing sent.
CRUISE = 0.97
#: The CUBIC constant relative to the ceiling: back at the ceiling ~8 s after a throttle
#: (the cube root of (1 - BETA) / SCALE), so that the pauses a probe costs stay rare.
SCALE = 5e-5
#: Seconds of answers that the accepted rate is measured over.
WINDOW = 2.0
#: While the limit is still unknown the rate doubles this often (in seconds).
DOUBLING = 0.5
#: Seconds the rate stays at the ceiling before it probes above it, on the CUBIC curve
#: and doubling every PROBE_DOUBLING seconds, so that a limit that was raised (or a run of
#: 429s that had nothing to do with the rate) is caught up with within a minute. A probe
#: ends in a 429, and so in a pause of its Retry-After: one a minute costs ~2 % of the
#: budget.
PLATEAU = 40.0
PROBE_DOUBLING = 2.0
#: Never slower than this (requests a second), whatever the API said.
MIN_RATE = 0.5
#: Requests held up (a busy loop, a process the machine runs late) may still go at their
#: rate for up to CATCH_UP seconds, or for up to CATCH_UP_MAX seconds but at most half the
#: API's burst once that is known: the API lets that much through at once anyway.
CATCH_UP = 0.02
CATCH_UP_MAX = 0.1
#: Sends are counted in slots of this many seconds, for at most SEND_SLOTS slots.
SLOT = 0.1
SEND_SLOTS = 1200


class AdaptiveRate:
    """The pace of one kind of request against an API whose limit is unknown.

    Unlimited until the first 429. Then the limit is looked for: from the accepted rate,
    the rate doubles every DOUBLING seconds until the next 429 (slow start). From then on
    the rate follows a CUBIC curve: it restarts a little below the estimated limit, climbs
    back to it quickly, stays around it for a while, and only then probes above it, so
    that 429s (each one pausing the client for its Retry-After) stay few.

    The estimate of the limit after a 429 is what the API's own token bucket must be for
    the requests sent since the last pause to have emptied it just then (see
    `estimate.limit_from_drain`), and never above the rate the refused request was sent
    at. Only a 429 to a request sent after the previous 429 was heard of counts (those
    in flight together are one signal, not many), and only when some request was
    accepted in between (a run of refusals alone, a hiccup of the API, says nothing of
    its rate: the pauses deal with it).

    Every method takes the caller's clock reading; nothing here sleeps or reads a clock.
    """

    def __init__(self, *, now: float) -> None:
        self._started = now
        #: False until the first 429: until then requests go out as fast as they are asked.
        self.limited = False
        self._slow_start: tuple[float, float] | None = None  # (first rate, since)
        self._curve: Cubic | None = None
        self._bucket: Bucket | None = None
        self._accepted = EventCounter(WINDOW)
        self._accepted_since_throttle = 0
        self._last_throttle = -math.inf
        self._active_since = now  # when requests last resumed after a pause
        self._pause = 0.0  # how long that pause was
        self._accepted_total = 0
        # (requests accepted before the first 429, seconds they took): the API's burst.
        self._first: tuple[int, float] | None = None
        self._sends: deque[list[float]] = deque()  # [slot start, count] since the pause
        self._catch_up: float | None = None  # turns that may go at once, once known

    @property
    def curve(self) -> Cubic | None:
        """The CUBIC curve the rate follows once the search is over (None before)."""
        return self._curve

    def rate(self, now: float) -> float | None:
        """Requests a second allowed at `now`; None while unlimited."""
        if self._curve is not None:
            curve = self._curve
            at_ceiling = curve.since + curve.k
            if now <= at_ceiling:  # climbing back
                return max(MIN_RATE, cubic_rate(curve, now))
            probing = now - at_ceiling - PLATEAU
            if probing <= 0.0:  # the plateau
                return max(MIN_RATE, curve.ceiling)
            # Past the plateau: the curve's convex part, delayed by the plateau, and
            # doubling every PROBE_DOUBLING seconds, whichever is faster.
            rate = cubic_rate(curve, now - PLATEAU)
            doublings = min(probing / PROBE_DOUBLING, 60.0)
            rate = max(rate, min(MAX_RATE, curve.ceiling * math.pow(2.0, doublings)))
            return max(MIN_RATE, rate)
        if self._slow_start is not None:
            first, since = self._slow_start
            doublings = min(max(0.0, now - since) / DOUBLING, 60.0)
            return min(MAX_RATE, first * math.pow(2.0, doublings))
        return None

    def reserve(self, now: float) -> float:
        """Take the next request's turn; the seconds to wait before sending it (0.0: now).

        Callers take turns one at a time (each after the previous one's wait), so a rate
        that changes applies from the very next request.
        """
        rate = self.rate(now)
        if rate is None:
            return 0.0
        catch_up = rate * CATCH_UP if self._catch_up is None else self._catch_up
        self._bucket, wait = take_token(
            self._bucket, now=now, per_second=rate, burst=max(1.0, catch_up)
        )
        sent = now + wait
        slot = sent - sent % SLOT
        if self._sends and self._sends[-1][0] >= slot:
            self._sends[-1][1] += 1
        else:
            self._sends.append([slot, 1])
            if len(self._sends) > SEND_SLOTS:
                self._sends.popleft()
        return wait

    def accepted(self, now: float) -> None:
        """A request got an answer other than a throttle."""
        self._accepted.add(now)
        self._accepted_since_throttle += 1
        self._accepted_total += 1

    def throttled(self, *, now: float, sent_at: float, resume_at: float) -> bool:
        """A request sent at `sent_at` was refused (429); requests resume at `resume_at`.

        Whether it was news (it set a new pace, or confirmed a pause), not an echo.
        """
        if sent_at < self._last_throttle:
            return False  # already in flight when the previous throttle was heard of
        refused_at = self.rate(sent_at)
        if refused_at is not None and not self._accepted_since_throttle:
            # Refused again with nothing let through since the last 429 (the pause itself
            # sent nothing): that says the API is still refusing, not how fast it takes
            # requests. The pause deals with it; the pace stays.
            pass
        elif refused_at is None or self._first is None:
            # The first 429: what got through until now is the API's burst plus its rate
            # for that long; the search starts from the rate accepted lately.
            self._first = (self._accepted_total, max(0.0, sent_at - self._started))
            since = max(self._active_since, now - WINDOW)
            # Over at least one doubling: requests refused within milliseconds of the
            # first got through on the API's burst, not its rate.
            recent = self._accepted.since(since) / max(now - since, DOUBLING)
            self._slow_start = (max(MIN_RATE, recent), resume_at)
            self.limited = True
        else:
            # Up to the refused request: those sent after it met an empty bucket. Of the
            # slot it was sent in, the share before it (the turns are evenly spaced).
            counted = [
                (start, count)
                for start, count in self._sends
                if self._active_since <= start + SLOT and start < sent_at
            ]
            last_share = 1.0
            if counted and sent_at < counted[-1][0] + SLOT:
                last_share = (sent_at - counted[-1][0]) / SLOT
                counted[-1] = (counted[-1][0], counted[-1][1] * last_share)
            limit = limit_from_drain(
                [count for _, count in counted],
                slot=SLOT,
                first_accepted=self._first[0],
                first_elapsed=self._first[1],
                pause=self._pause,
                last_share=last_share,
            )
            if limit is not None:
                estimate = min(refused_at, limit)
                start = BETA * estimate
                ceiling = CRUISE * estimate
                burst = self._first[0] - limit * self._first[1]
                self._catch_up = min(ceiling * CATCH_UP_MAX, max(1.0, burst / 2.0))
            else:
                # Too little to go by: the rate that was refused overshot by up to one
                # doubling of the search; restart at half of it.
                ceiling = refused_at
                start = refused_at / 2.0
            self._slow_start = None
            self._curve = cubic_curve(
                start=max(MIN_RATE, start),
                ceiling=max(MIN_RATE, ceiling),
                since=resume_at,
                scale=SCALE,
            )
        self._pause = max(0.0, resume_at - now)
        self._sends.clear()
        self._bucket = Bucket(tokens=0.0, stamp=resume_at)
        self._last_throttle = now
        self._accepted_since_throttle = 0
        self._active_since = resume_at
        return True
