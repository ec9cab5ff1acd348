"""Default sizes of batches, apart so that signatures can name them without the machinery."""

from __future__ import annotations

__all__ = ["DEFAULT_LAUNCH_CONCURRENCY"]

#: Launches in flight at once when `launch_many` is not told otherwise.
DEFAULT_LAUNCH_CONCURRENCY = 10
