"""Detached JWS (RS256) checks for webhook signatures: parsing is pure, crypto is imported late."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from typing import TYPE_CHECKING, Any

import attrs

from .._validate import check_id
from ..errors import WebhookVerificationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = [
    "MAX_HEADER_LENGTH",
    "MIN_RSA_BITS",
    "DetachedJws",
    "b64url_encode",
    "load_rsa_public_key",
    "parse_detached_jws",
    "require_cryptography",
    "rs256_verify",
]

#: A real header is about 100 characters of JSON plus a 342-character signature.
MAX_HEADER_LENGTH = 8 * 1024
MIN_RSA_BITS = 2048

# Unpadded base64url (RFC 7515 section 2); padding or other alphabets are refused.
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
# Header parameters whose meaning this verifier implements (RFC 7515 section 4.1.11).
_UNDERSTOOD_CRIT = frozenset({"b64"})
# cryptography is a dependency: only a broken or partial installation lacks it.
_INSTALL_HINT = "pip install 'cryptography>=42' (a dependency of transactionlink-async)"


@attrs.frozen
class DetachedJws:
    """A parsed `JWS-SIGNATURE` value: what it claims, before any signature check."""

    kid: str
    #: False when the header says `"b64": false` (RFC 7797): the body is signed as is.
    b64: bool
    #: The base64url header exactly as received: the signature covers these characters.
    protected: str = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)

    def signing_input(self, body: bytes) -> bytes:
        """The bytes the sender signed: `<header>.<payload>` over the exact body."""
        payload = b64url_encode(body) if self.b64 else body
        return self.protected.encode("ascii") + b"." + payload


def _reject(reason: str) -> WebhookVerificationError:
    return WebhookVerificationError(f"webhook rejected: {reason}")


def b64url_encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64url_decode(text: str, what: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise _reject(f"the {what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _reject(f"the {what} is not base64url") from None
    # Unused trailing bits must be zero: otherwise several strings decode to the same
    # bytes, and an altered header would pass as the original.
    if b64url_encode(data).decode("ascii") != text:
        raise _reject(f"the {what} is not canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # RFC 7515 section 4: a header with a repeated name must be rejected or read
        # consistently; rejecting leaves no room for two parsers to disagree.
        raise ValueError("duplicate member")
    return result


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@functools.lru_cache(maxsize=64)
def _checked_header(protected: str) -> tuple[str, bool]:
    """The kid and b64 flag of an acceptable protected header; WebhookVerificationError if not.

    Cached: a sender puts the same header on every delivery signed with one key, and a
    pure function of the exact string may answer from memory. Rejections are not cached.
    """
    raw_header = _b64url_decode(protected, "JWS header")
    try:
        header = json.loads(raw_header.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _reject("the JWS header is not a JSON object") from None
    if not isinstance(header, dict):
        raise _reject("the JWS header is not a JSON object")
    alg = header.get("alg")
    if alg != "RS256":
        raise _reject(f"algorithm {_short(alg)} is not accepted (only RS256)")
    b64 = header.get("b64", True)
    if not isinstance(b64, bool):
        raise _reject("the JWS header's b64 must be true or false")
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
            raise _reject("the JWS header's crit must be a non-empty list of names")
        unknown = [c for c in crit if c not in _UNDERSTOOD_CRIT]
        if unknown:
            raise _reject(f"the JWS header requires unsupported extensions {_short(unknown)}")
        if any(c not in header for c in crit):
            raise _reject("the JWS header's crit names a parameter it does not carry")
    try:
        kid = check_id("kid", header.get("kid"))
    except (TypeError, ValueError):
        raise _reject("the JWS header has no usable key id (kid)") from None
    return kid, b64


def parse_detached_jws(value: str) -> DetachedJws:
    """Parse and check a `<header>..<signature>` value; WebhookVerificationError if unusable."""
    if len(value) > MAX_HEADER_LENGTH:
        raise _reject(f"the JWS-SIGNATURE header is longer than {MAX_HEADER_LENGTH} characters")
    parts = value.strip().split(".")
    if len(parts) != 3:
        raise _reject("JWS-SIGNATURE is not a detached JWS (expected <header>..<signature>)")
    protected, payload, signature_text = parts
    if payload:
        raise _reject("JWS-SIGNATURE carries a payload; only a detached signature is accepted")
    if not protected:
        raise _reject("JWS-SIGNATURE lacks its header")
    kid, b64 = _checked_header(protected)
    if not signature_text:
        raise _reject("JWS-SIGNATURE lacks its signature")
    signature = _b64url_decode(signature_text, "JWS signature")
    return DetachedJws(kid=kid, b64=b64, protected=protected, signature=signature)


def require_cryptography() -> None:
    """Fail early, with the fix, when cryptography cannot be imported."""
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"verifying webhooks needs the cryptography package; {_INSTALL_HINT}"
        ) from exc


def load_rsa_public_key(data: bytes) -> RSAPublicKey:
    """An RSA public key of at least 2048 bits from PEM or bare base64 DER; ValueError if not."""
    require_cryptography()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
        else:
            # What `?pem=false` answers: the DER bytes in base64, no armour.
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("the webhook key is not a PEM or base64 DER public key") from exc
    if not isinstance(key, RSAPublicKey):
        # ValueError, not TypeError: to the key cache this is one more unusable key answer.
        raise ValueError(f"the webhook key is {type(key).__name__}, not RSA")  # noqa: TRY004
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"the webhook key has {key.key_size} bits, fewer than {MIN_RSA_BITS}")
    return key


@functools.cache
def _rs256_tools() -> tuple[type[Exception], Any, Any]:
    # Imported once, not per delivery: verification is the hot path of a webhook receiver.
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return InvalidSignature, padding.PKCS1v15(), hashes.SHA256()


def rs256_verify(key: RSAPublicKey, signature: bytes, data: bytes) -> bool:
    """Whether `signature` is a valid RSASSA-PKCS1-v1_5 SHA-256 signature of `data`."""
    invalid_signature, pkcs1v15, sha256 = _rs256_tools()
    try:
        key.verify(signature, data, pkcs1v15, sha256)
    except invalid_signature:
        return False
    return True
