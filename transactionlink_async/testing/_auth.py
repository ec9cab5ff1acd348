"""The fake server's credentials: organization token, API key, access JWTs and refresh tokens."""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import _jwt

__all__ = ["TokenStore"]


class TokenStore:
    """Issues and checks tokens; pure bookkeeping, the wall clock is injected."""

    def __init__(
        self,
        *,
        org_token: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        access_token_lifetime: float = 3600.0,
        include_expiry_duration: bool = True,
        refresh_token_single_use: bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.org_token = org_token or f"tot_{secrets.token_urlsafe(24)}"
        self.api_key = api_key or f"key_{secrets.token_hex(8)}"
        self.api_secret = api_secret or secrets.token_urlsafe(32)
        self.access_token_lifetime = access_token_lifetime
        self.include_expiry_duration = include_expiry_duration
        self.refresh_token_single_use = refresh_token_single_use
        self._wall_clock = wall_clock
        self._signing_key = secrets.token_bytes(32)
        # jti -> subject; a jti missing here was never issued or has been revoked.
        self._live_access: dict[str, str] = {}
        # jti -> wall-clock expiry, exact: the JWT's `exp` is whole seconds, so a token
        # living 0.4 s would otherwise expire anywhere from at once to 0.4 s later.
        self._access_expiry: dict[str, float] = {}
        # refresh token -> subject, for the tokens that may still be used.
        self._live_refresh: dict[str, str] = {}
        self.access_tokens_issued = 0
        self.refresh_tokens_issued = 0

    def authorize(self, key: object, secret: object) -> dict[str, Any] | None:
        """The token answer for a correct key and secret, None otherwise."""
        if not (isinstance(key, str) and isinstance(secret, str)):
            return None
        # compare_digest on both so a wrong key costs the same as a wrong secret.
        key_ok = hmac.compare_digest(key.encode(), self.api_key.encode())
        secret_ok = hmac.compare_digest(secret.encode(), self.api_secret.encode())
        if not (key_ok and secret_ok):
            return None
        return self._token_answer(self.api_key, self._new_refresh_token(self.api_key))

    def refresh(self, refresh_token: object) -> dict[str, Any] | None:
        """The token answer for a live refresh token, None for an unknown, used or revoked one."""
        if not isinstance(refresh_token, str):
            return None
        subject = self._live_refresh.get(refresh_token)
        if subject is None:
            return None
        if self.refresh_token_single_use:
            del self._live_refresh[refresh_token]
            refresh_token = self._new_refresh_token(subject)
        return self._token_answer(subject, refresh_token)

    def accepts(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header value grants access."""
        if authorization is None:
            return False
        if hmac.compare_digest(authorization.encode(), self.org_token.encode()):
            return True
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token:
            return False
        claims = _jwt.decode(self._signing_key, token)
        if claims is None:
            return False
        jti, exp = claims.get("jti"), claims.get("exp")
        if not isinstance(jti, str) or jti not in self._live_access:
            return False
        return isinstance(exp, int) and self._wall_clock() < self._access_expiry.get(jti, exp)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused from now on."""
        self._live_access.clear()
        self._access_expiry.clear()

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far is refused from now on."""
        self._live_refresh.clear()

    def _new_refresh_token(self, subject: str) -> str:
        token = f"rt_{secrets.token_urlsafe(32)}"
        self._live_refresh[token] = subject
        self.refresh_tokens_issued += 1
        return token

    def _token_answer(self, subject: str, refresh_token: str) -> dict[str, Any]:
        now = self._wall_clock()
        lifetime = self.access_token_lifetime
        jti = uuid.uuid4().hex
        # exp is floored so a lifetime of 0 yields a token that is already expired.
        claims = {"sub": subject, "iat": int(now), "exp": int(now + lifetime), "jti": jti}
        self._live_access[jti] = subject
        self._access_expiry[jti] = now + lifetime
        self.access_tokens_issued += 1
        answer: dict[str, Any] = {
            "accessToken": _jwt.mint(self._signing_key, claims),
            "refreshToken": refresh_token,
        }
        if self.include_expiry_duration:
            answer["expiryDuration"] = int(lifetime) if float(lifetime).is_integer() else lifetime
        answer["tokenType"] = "Bearer"
        return answer
