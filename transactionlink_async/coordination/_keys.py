"""The Redis key and channel names of one namespace, in one place."""

from __future__ import annotations

import attrs

__all__ = ["Keys", "check_namespace"]

_MAX_NAMESPACE = 100


def check_namespace(namespace: object) -> str:
    """A namespace fit for key names: printable, no spaces, not empty."""
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, got {type(namespace).__name__}")
    if (
        not namespace
        or len(namespace) > _MAX_NAMESPACE
        or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in namespace)
    ):
        raise ValueError(
            f"namespace must be 1 to {_MAX_NAMESPACE} characters without spaces or control "
            f"characters, got {namespace!r}"
        )
    return namespace


@attrs.frozen
class Keys:
    """Names under `namespace:`; none holds a token or secret (credentials appear hashed)."""

    namespace: str

    def token(self, credentials_name: str) -> str:
        return f"{self.namespace}:token:{credentials_name}"

    def token_lease(self, credentials_name: str) -> str:
        return f"{self.namespace}:token:{credentials_name}:lease"

    def bucket(self, kind: str) -> str:
        return f"{self.namespace}:bucket:{kind}"

    def pause(self, kind: str) -> str:
        return f"{self.namespace}:pause:{kind}"

    @property
    def paused_kinds(self) -> str:
        return f"{self.namespace}:paused-kinds"

    def final(self, execution_id: str) -> str:
        """The short-lived marker that an execution's final status was announced."""
        return f"{self.namespace}:final:{execution_id}"

    @property
    def finals_channel(self) -> str:
        return f"{self.namespace}:finals"

    @property
    def pauses_channel(self) -> str:
        return f"{self.namespace}:pauses"
