"""Minting and checking the fake server's HS256 JWTs with nothing but the standard library."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["b64url_decode", "b64url_encode", "decode", "mint"]

_HEADER = {"alg": "HS256", "typ": "JWT"}


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as JWS wants it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of `b64url_encode`; raises ValueError on garbage."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not base64url") from exc


def _json_segment(value: Mapping[str, Any]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def _sign(secret: bytes, signing_input: str) -> str:
    return b64url_encode(hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest())


def mint(secret: bytes, claims: Mapping[str, Any]) -> str:
    """A compact HS256 JWT carrying `claims`."""
    signing_input = f"{_json_segment(_HEADER)}.{_json_segment(claims)}"
    return f"{signing_input}.{_sign(secret, signing_input)}"


def decode(secret: bytes, token: str) -> dict[str, Any] | None:
    """The claims of a token this secret signed, or None for anything else (expiry not checked)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header_part, claims_part, signature = parts
    expected = _sign(secret, f"{header_part}.{claims_part}")
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        return None
    try:
        header = json.loads(b64url_decode(header_part))
        claims = json.loads(b64url_decode(claims_part))
    except ValueError:
        return None
    if header != _HEADER or not isinstance(claims, dict):
        return None
    return claims
