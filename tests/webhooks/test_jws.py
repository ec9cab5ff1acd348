"""The pure JWS checks: parsing a detached RS256 header, the signing input, keys, verification."""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async import WebhookVerificationError
from transactionlink_async._webhooks.jws import (
    MAX_HEADER_LENGTH,
    DetachedJws,
    load_rsa_public_key,
    parse_detached_jws,
    rs256_verify,
)

KID = "6f1c1b0e-3f43-4c84-9a53-0c6b8f1f2d11"


@functools.cache
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def protected(header: Any) -> str:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return b64url(raw)


def jws(header: Any, signature: bytes = b"\x01" * 256) -> str:
    return f"{protected(header)}..{b64url(signature)}"


def signed(body: bytes, header: dict[str, Any] | None = None) -> str:
    header = header or {"alg": "RS256", "kid": KID, "typ": "JWT"}
    head = protected(header)
    payload = body if header.get("b64") is False else b64url(body).encode()
    signature = private_key().sign(
        head.encode() + b"." + payload, padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{head}..{b64url(signature)}"


def rejected(value: str) -> str:
    with pytest.raises(WebhookVerificationError) as info:
        parse_detached_jws(value)
    return str(info.value)


def test_a_standard_header_parses() -> None:
    parsed = parse_detached_jws(jws({"alg": "RS256", "kid": KID, "typ": "JWT"}))
    assert parsed.kid == KID
    assert parsed.b64 is True
    assert parsed.signature == b"\x01" * 256


def test_signing_input_covers_the_header_as_sent_and_the_encoded_body() -> None:
    value = jws({"alg": "RS256", "kid": KID})
    parsed = parse_detached_jws(value)
    head = value.split(".")[0]
    body = b'{"a":1}'
    assert parsed.signing_input(body) == f"{head}.{b64url(body)}".encode()


def test_b64_false_signs_the_raw_body() -> None:
    value = jws({"alg": "RS256", "kid": KID, "b64": False, "crit": ["b64"]})
    parsed = parse_detached_jws(value)
    assert parsed.b64 is False
    assert parsed.signing_input(b"raw.body") == value.split(".")[0].encode() + b".raw.body"


def test_b64_false_without_crit_is_read_the_same() -> None:
    assert parse_detached_jws(jws({"alg": "RS256", "kid": KID, "b64": False})).b64 is False


@pytest.mark.parametrize(
    "alg", ["none", "None", "HS256", "HS512", "RS512", "PS256", "ES256", "rs256", "", None, 256]
)
def test_only_rs256_is_accepted(alg: object) -> None:
    assert "only RS256" in rejected(jws({"alg": alg, "kid": KID}))


def test_missing_alg_is_rejected() -> None:
    assert "only RS256" in rejected(jws({"kid": KID}))


def test_alg_none_with_an_empty_signature_is_rejected_for_its_alg() -> None:
    assert "'none'" in rejected(protected({"alg": "none", "kid": KID}) + "..")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "a.b",
        "a..b..c",
        "..",
        "...",
        "not a signature",
    ],
)
def test_malformed_shapes_are_rejected(value: str) -> None:
    rejected(value)


def test_an_attached_payload_is_rejected() -> None:
    head = protected({"alg": "RS256", "kid": KID})
    assert "payload" in rejected(f"{head}.{b64url(b'{}')}.{b64url(b'x' * 256)}")


def test_a_missing_signature_is_rejected() -> None:
    assert "signature" in rejected(protected({"alg": "RS256", "kid": KID}) + "..")


def test_a_missing_header_is_rejected() -> None:
    assert "header" in rejected(".." + b64url(b"x" * 256))


def test_an_oversize_header_is_rejected_before_decoding() -> None:
    value = jws({"alg": "RS256", "kid": KID, "pad": "x" * MAX_HEADER_LENGTH})
    assert "longer than" in rejected(value)


@pytest.mark.parametrize(
    "head",
    [
        "e30=",  # padded
        "e30+",  # standard alphabet
        "e3 0",
        "é",
        "e",  # impossible length
    ],
)
def test_bad_base64_in_the_header_is_rejected(head: str) -> None:
    assert "base64url" in rejected(f"{head}..{b64url(b'x' * 256)}")


def test_non_canonical_base64_in_the_signature_is_rejected() -> None:
    # 256 bytes leave 4 unused bits in the last character: setting one must not decode
    # to the same signature (that would let an altered header value pass).
    good = b64url(b"\x00" * 256)
    assert good.endswith("A")
    value = protected({"alg": "RS256", "kid": KID}) + ".." + good[:-1] + "B"
    assert "canonical" in rejected(value)


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'"RS256"', b"null", b"\xff\xfe", b'{"alg":"RS256","alg":"RS256"}'],
)
def test_a_header_that_is_not_one_json_object_is_rejected(raw: bytes) -> None:
    assert "JSON object" in rejected(jws(raw))


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"], "exp": 1},
        {"crit": "b64", "b64": True},
        {"crit": [], "b64": True},
        {"crit": ["b64"]},  # names a parameter that is absent
        {"b64": "false"},
        {"b64": 0},
    ],
)
def test_critical_extensions_and_b64_are_checked(extra: dict[str, Any]) -> None:
    rejected(jws({"alg": "RS256", "kid": KID, **extra}))


@pytest.mark.parametrize("kid", [None, "", 5, "../keys", "a/b", "a?b", "x" * 201, "."])
def test_the_kid_must_be_a_plain_segment(kid: object) -> None:
    assert "kid" in rejected(jws({"alg": "RS256", "kid": kid}))


def test_messages_never_echo_the_whole_header() -> None:
    secretish = "S" * 300
    message = rejected(jws({"alg": secretish, "kid": KID}))
    assert secretish not in message
    assert len(message) < 200


# Headers a change or two away from an accepted one, so generated values reach every check.
CHANGES = st.dictionaries(
    st.sampled_from(["alg", "kid", "b64", "crit", "exp"]),
    st.sampled_from(
        ["RS256", "none", "HS256", KID, "", "a/b", True, False, "false", 0, 1, "b64", "JWT"]
    )
    | st.lists(st.sampled_from(["b64", "exp"]), max_size=2),
    max_size=3,
)
JWS_LIKE = st.text(max_size=300) | st.builds(
    lambda changes, middle, signature: (
        f"{protected({'alg': 'RS256', 'kid': KID, **changes})}.{middle}.{b64url(signature)}"
    ),
    CHANGES,
    st.sampled_from(["", "", "", "e30"]),
    st.binary(min_size=1, max_size=300),
)


def parsed_or_refusal(value: str) -> DetachedJws | str:
    try:
        return parse_detached_jws(value)
    except WebhookVerificationError as exc:
        return str(exc)


@given(JWS_LIKE)
def test_any_text_is_rejected_or_parsed_into_what_its_header_says(value: str) -> None:
    parsed = parsed_or_refusal(value)
    if isinstance(parsed, str):
        assert parsed.startswith("webhook rejected: ")
        assert len(parsed) < 200  # never the whole value echoed
        return
    head, payload, signature = value.strip().split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert payload == ""
    assert header["alg"] == "RS256"
    assert parsed.kid == header["kid"]
    assert parsed.kid
    assert "/" not in parsed.kid
    assert isinstance(parsed.b64, bool)
    assert parsed.b64 is header.get("b64", True)
    if "crit" in header:
        assert header["crit"] == ["b64"]
        assert "b64" in header
    assert parsed.protected == head
    assert signature
    assert b64url(parsed.signature) == signature


def test_rs256_verify_accepts_the_signature_and_refuses_any_other_input() -> None:
    body = b'{"workflowId":"w1","status":"COMPLETED"}'
    parsed = parse_detached_jws(signed(body))
    key = load_rsa_public_key(
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert rs256_verify(key, parsed.signature, parsed.signing_input(body))
    assert not rs256_verify(key, parsed.signature, parsed.signing_input(body + b" "))
    assert not rs256_verify(key, parsed.signature[:-1], parsed.signing_input(body))
    unencoded = parse_detached_jws(signed(body, {"alg": "RS256", "kid": KID, "b64": False}))
    assert rs256_verify(key, unencoded.signature, unencoded.signing_input(body))


def test_keys_load_from_pem_and_bare_base64_der() -> None:
    public = private_key().public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs1 = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    for text in (pem, pem + b"\n", base64.b64encode(der), pkcs1):
        assert load_rsa_public_key(text).public_numbers() == public.public_numbers()


def test_keys_that_are_not_rsa_or_too_small_are_refused() -> None:
    # Deliberately weak: the point is that it is refused.
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    ecdsa = ec.generate_private_key(ec.SECP256R1()).public_key()
    for key, reason in ((small, "1024 bits"), (ecdsa, "not RSA")):
        pem = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with pytest.raises(ValueError, match=reason):
            load_rsa_public_key(pem)
    for garbage in (b"", b"-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----", b"%%%"):
        with pytest.raises(ValueError, match="not a PEM"):
            load_rsa_public_key(garbage)
