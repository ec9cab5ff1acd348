"""Keys derived from the API credentials: an opaque name for Redis keys, and AES-GCM sealing.

Only holders of the key and secret can find the shared token (its key name is a keyed hash)
or read it (it is encrypted with a key derived from the secret), so a Redis shared with
other applications, a dump or a replica never shows a token, a refresh token or the secret.
"""

from __future__ import annotations

import os
import struct
from typing import Any

__all__ = ["CredentialKeys", "require_cryptography"]

_SALT = b"transactionlink-async/coordination/v1"
_NONCE_BYTES = 12


def require_cryptography() -> Any:
    """The `cryptography` package's primitives, or an ImportError naming the extra."""
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError as exc:  # pragma: no cover - the redis extra installs cryptography
        raise ImportError(
            "sharing tokens through Redis needs the cryptography package: "
            "pip install 'transactionlink-async[redis]'"
        ) from exc
    return hashes, AESGCM, HKDF


class CredentialKeys:
    """What one set of API credentials gives the token store: a key name and a cipher."""

    __slots__ = ("_aead", "name")

    def __init__(self, key: str, secret: str) -> None:
        hashes, aesgcm, hkdf = require_cryptography()
        # Length-prefixed, so ("ab", "c") and ("a", "bc") never derive the same keys. API
        # secrets are long random strings, so HKDF (not a slow password hash) is enough.
        raw_key, raw_secret = key.encode(), secret.encode()
        material = struct.pack(">I", len(raw_key)) + raw_key + raw_secret

        def derive(purpose: bytes, length: int) -> bytes:
            kdf = hkdf(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=purpose)
            derived: bytes = kdf.derive(material)
            return derived

        #: Hex, 128 bits: the same for every process holding these credentials, and
        #: telling nothing about them.
        self.name = derive(b"key name", 16).hex()
        self._aead = aesgcm(derive(b"token encryption", 32))

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """`plaintext` encrypted and authenticated, bound to `context` (e.g. key and generation)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed: bytes = self._aead.encrypt(nonce, plaintext, context)
        return nonce + sealed

    def open(self, blob: bytes, context: bytes) -> bytes | None:
        """The plaintext of a `seal()`ed blob, or None if it was tampered with or is not ours."""
        from cryptography.exceptions import InvalidTag

        if len(blob) <= _NONCE_BYTES:
            return None
        try:
            opened: bytes = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], context)
        except InvalidTag:
            return None
        return opened

    def __repr__(self) -> str:
        return "<CredentialKeys …>"
