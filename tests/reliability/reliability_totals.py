"""What the fault-injection scenarios did, summed over the run (shared by conftest and tests)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Totals:
    """What the fault-injection scenarios did, summed over the session."""

    scenarios: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    launches: int = 0
    launches_failed: int = 0
    launched_despite_error: int = 0
    launched_twice: int = 0
    waits: Counter[str] = field(default_factory=Counter)
    downloads: int = 0
    downloads_failed: int = 0
    bytes_verified: int = 0
    log_lines_checked: int = 0
    token_refreshes: int = 0
    violations: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(self.faults.items())) or "none"
        waits = ", ".join(f"{kind} {n}" for kind, n in sorted(self.waits.items())) or "none"
        return [
            f"scenarios: {self.scenarios}",
            f"faults injected: {sum(self.faults.values())} ({faults})",
            f"launches: {self.launches} ({self.launches_failed} ended in an error, "
            f"{self.launched_despite_error} of them created on the server and reported "
            f"as possibly carried out; {self.launched_twice} launched twice)",
            f"waits: {sum(self.waits.values())} ({waits})",
            f"downloads: {self.downloads} ({self.downloads_failed} failed cleanly), "
            f"{self.bytes_verified:,} bytes verified by MD5",
            f"token refreshes (rotating refresh tokens): {self.token_refreshes}",
            f"log lines checked for secrets: {self.log_lines_checked}",
            f"invariant violations: {len(self.violations)}",
        ]


TOTALS = Totals()
