"""Credentials, and the token keeper: single-flight refresh, early renewal and the 401 rule.

With a token share (coordination), the same holds across processes: the keeper adopts the
shared token, and renews it for everyone when it is the first to need a new one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import anyio
import attrs

from ._convert import ConversionError, structure
from .coordination._guard import CoordinationUnavailable
from .coordination._token_share import FreshToken, SharedToken, TokenShare
from .errors import AuthenticationError, BadRequestError, InvalidResponseError
from .models import AuthTokens

__all__ = [
    "ApiKey",
    "Credentials",
    "OrganizationToken",
    "TokenKeeper",
    "credentials_from_env",
    "keeper_for",
    "token_lifetime",
]

logger = logging.getLogger("transactionlink_async")

#: Renew this long before expiry (or half the lifetime, for tokens shorter than twice this).
REFRESH_MARGIN = 60.0
#: A token due for renewal is still sent until this long before it expires (or a quarter
#: of its lifetime before, for short ones): the renewal runs meanwhile.
EXPIRY_MARGIN = 5.0


def _check_header_safe(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value or value.strip() != value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ValueError(
            f"{name} must be a non-empty string without spaces or control characters "
            "(check for a stray newline when reading it from a file or environment)"
        )
    return value


class OrganizationToken:
    """An organization API token (`tot_...`), sent as `Authorization: tot_...` with no Bearer."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        token = _check_header_safe("OrganizationToken", token)
        if not token.startswith("tot_"):
            raise ValueError(
                "an organization token starts with 'tot_'; for an API key and secret use "
                "ApiKey(key, secret)"
            )
        self._token = token

    @property
    def token(self) -> str:
        """The token itself (kept out of repr and str)."""
        return self._token

    def __repr__(self) -> str:
        return "OrganizationToken('tot_…')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OrganizationToken) and other._token == self._token

    def __hash__(self) -> int:
        return hash((OrganizationToken, self._token))


class ApiKey:
    """An API key and secret, exchanged for a JWT at `/auth/authorize` and refreshed as needed."""

    __slots__ = ("_key", "_secret")

    def __init__(self, key: str, secret: str) -> None:
        self._key = _check_header_safe("ApiKey key", key)
        self._secret = _check_header_safe("ApiKey secret", secret)

    @property
    def key(self) -> str:
        return self._key

    @property
    def secret(self) -> str:
        return self._secret

    def __repr__(self) -> str:
        return "ApiKey(key='…', secret='…')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and (other._key, other._secret) == (
            self._key,
            self._secret,
        )

    def __hash__(self) -> int:
        return hash((ApiKey, self._key, self._secret))


Credentials = OrganizationToken | ApiKey

#: Sends an unauthenticated JSON POST to an auth path and returns the parsed JSON answer;
#: raises the SDK's APIError subclasses on error answers.
AuthCall = Callable[[str, Mapping[str, Any]], Awaitable[Any]]


class TokenKeeper(Protocol):
    """Gives each call an Authorization value and renews it when the API refuses it."""

    async def authorization(self) -> tuple[str, int]:
        """The header value to send now, and the generation it belongs to."""
        ...

    def ready(self) -> tuple[str, int] | None:
        """As `authorization()` when it would not wait (no renewal due), else None."""
        ...

    def at_hand(self) -> tuple[str, int] | None:
        """As `authorization()`, without waiting: the current token while it is still
        valid (renewal due or not), else None."""
        ...

    async def renew_after_401(self, generation: int) -> bool:
        """A call using `generation` got 401: renew if still current; True if a replay may help."""
        ...


class StaticKeeper:
    """An organization token: nothing to renew."""

    def __init__(self, credentials: OrganizationToken) -> None:
        self._value = credentials.token

    async def authorization(self) -> tuple[str, int]:
        return self._value, 0

    def ready(self) -> tuple[str, int] | None:
        return self._value, 0

    def at_hand(self) -> tuple[str, int] | None:
        return self._value, 0

    async def renew_after_401(self, generation: int) -> bool:
        return False


@attrs.frozen
class _Token:
    access: str = attrs.field(repr=False)
    #: When to renew, on the keeper's monotonic clock (None: only on a 401).
    renew_at: float | None
    #: Until when it may still be sent while a renewal is due (None: no end known).
    usable_until: float | None = None


def _jwt_claims(token: str) -> Mapping[str, Any] | None:
    """The payload of a JWT, read without verification (we only need `exp`)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


def token_lifetime(tokens: AuthTokens, *, wall_now: float) -> float | None:
    """Seconds the new access token lives: `expiryDuration`, else the JWT's `exp`, else None."""
    if tokens.expiry_duration is not None and tokens.expiry_duration > 0:
        return tokens.expiry_duration
    claims = _jwt_claims(tokens.access_token)
    exp = claims.get("exp") if claims else None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp > wall_now:
        return float(exp) - wall_now
    # Already expired by our clock (skew) or unknown: renew only when the API says 401,
    # rather than renewing in a loop a token that looks stale from birth.
    return None


def renew_at(
    lifetime: float | None, *, obtained: float, margin: float = REFRESH_MARGIN
) -> float | None:
    """When to renew a token of `lifetime` seconds obtained at `obtained` (monotonic)."""
    if lifetime is None:
        return None
    # Short-lived tokens would otherwise be "about to expire" from birth and never be used.
    return obtained + lifetime - min(margin, lifetime / 2)


def _token(access: str, lifetime: float | None, *, obtained: float) -> _Token:
    if lifetime is None:
        return _Token(access, None)
    usable = obtained + lifetime - min(EXPIRY_MARGIN, lifetime / 4)
    return _Token(access, renew_at(lifetime, obtained=obtained), usable)


class JwtKeeper:
    """An API key and secret: authorize, renew early, once for all concurrent callers."""

    def __init__(
        self,
        credentials: ApiKey,
        call: AuthCall,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        share: TokenShare | None = None,
    ) -> None:
        self._credentials = credentials
        self._call = call
        self._share = share
        self._clock = clock
        self._wall_clock = wall_clock
        self._token: _Token | None = None
        self._refresh_token: str | None = None
        self._generation = 0
        #: Renewals that ended (in success or error), and the error of the last failed one:
        #: tasks queued behind a failed renewal share its error instead of repeating it.
        self._renewals_ended = 0
        self._last_failure: Exception | None = None
        # Locks belong to an event loop: made on first use in the running loop, never at import.
        self._lock: anyio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _get_lock(self) -> anyio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock = anyio.Lock()
            self._lock_loop = loop
        return self._lock

    def _is_fresh(self, token: _Token) -> bool:
        return token.renew_at is None or self._clock() < token.renew_at

    async def authorization(self) -> tuple[str, int]:
        held = self.ready()
        if held is not None:
            return held
        generation = self._generation
        while True:
            await self._renew(generation)
            token, generation = self._token, self._generation
            # A token just obtained is used even if it already looks stale: the API decides.
            if token is not None:
                return f"Bearer {token.access}", generation

    def ready(self) -> tuple[str, int] | None:
        token = self._token
        if token is not None and self._is_fresh(token):
            return f"Bearer {token.access}", self._generation
        return None

    def at_hand(self) -> tuple[str, int] | None:
        token = self._token
        if token is None:
            return None
        if token.usable_until is not None and self._clock() >= token.usable_until:
            return None
        return f"Bearer {token.access}", self._generation

    async def renew_after_401(self, generation: int) -> bool:
        if generation == self._generation:
            refused, self._token = self._token, None
            await self._renew(generation, refused=None if refused is None else refused.access)
        # Either we renewed, or another task did since the refused call: replay either way.
        return True

    async def _renew(self, seen_generation: int, *, refused: str | None = None) -> None:
        renewals_before = self._renewals_ended
        async with self._get_lock():
            if self._generation != seen_generation:
                return  # another task renewed while we queued: use its token
            if self._renewals_ended != renewals_before and self._last_failure is not None:
                # A renewal failed while we queued: one failure per burst, not one per caller;
                # each caller gets its own copy (sharing one object would pile every
                # caller's frames onto a single traceback).
                raise _copy_error(self._last_failure)
            try:
                token, refresh = await self._obtain(refused)
            except Exception as exc:
                # (A cancelled renewal is not recorded: the next caller simply tries again.)
                # Kept detached: no traceback, so no frames stay alive until the next success.
                self._last_failure = _copy_error(exc)
                self._renewals_ended += 1
                raise
            self._last_failure = None
            self._renewals_ended += 1
            self._token, self._refresh_token = token, refresh
            self._generation += 1

    async def _obtain(self, refused: str | None) -> tuple[_Token, str | None]:
        """A new token and the refresh token to keep: the shared one, else our own."""
        if self._share is not None:
            try:
                shared = await self._share.get(
                    self._fetch_fresh, refused=refused, margin=REFRESH_MARGIN
                )
            except CoordinationUnavailable:
                logger.debug("the shared token cannot be reached; renewing on our own")
            else:
                return self._adopt(shared)
        answer, kept = await self._fetch(self._refresh_token, ours=True)
        lifetime = token_lifetime(answer, wall_now=self._wall_clock())
        token = _token(answer.access_token, lifetime, obtained=self._clock())
        return token, answer.refresh_token or kept

    def _adopt(self, shared: SharedToken) -> tuple[_Token, str | None]:
        token = _Token(shared.access, None)
        if shared.expires_in is not None:
            lifetime = shared.lifetime if shared.lifetime is not None else shared.expires_in
            born = self._clock() - (lifetime - shared.expires_in)
            token = _token(shared.access, lifetime, obtained=born)
        # A refresh token that went through the store may be spent by another process: on
        # our own (Redis away) we refresh only with one nobody else has, else authorize.
        refresh = shared.refresh if shared.generation is None else None
        return token, refresh

    async def _fetch_fresh(self, refresh: str | None) -> FreshToken:
        """A renewal for the token share, with the shared refresh token (None: authorize)."""
        answer, kept = await self._fetch(refresh)
        return FreshToken(
            access=answer.access_token,
            refresh=answer.refresh_token or kept,
            lifetime=token_lifetime(answer, wall_now=self._wall_clock()),
            obtained=self._clock(),
        )

    async def _fetch(
        self, refresh: str | None, *, ours: bool = False
    ) -> tuple[AuthTokens, str | None]:
        """Refresh (or authorize when there is nothing to refresh, or it is refused).

        Returns the answer and the refresh token still worth keeping should the answer
        bring none: the one just used, unless it was refused. A refused refresh token of
        our own is forgotten at once, even if the authorize after it fails.
        """
        if refresh is not None:
            try:
                answer = await self._call("/auth/refresh", {"refreshToken": refresh})
                return _check_answer(answer, "/auth/refresh"), refresh
            except (AuthenticationError, BadRequestError) as exc:
                logger.info("token refresh refused (HTTP %s); authorizing again", exc.status)
            except InvalidResponseError as exc:
                # The refresh token may be spent whatever the answer said: start afresh,
                # as for a refusal, rather than fail every call from now on.
                logger.info("token refresh answer unusable (%s); authorizing again", exc)
            if ours:
                self._refresh_token = None
        logger.debug("authorizing with the API key")
        answer = await self._call(
            "/auth/authorize",
            {"key": self._credentials.key, "secret": self._credentials.secret},
        )
        return _check_answer(answer, "/auth/authorize"), None


def _check_answer(answer: Any, path: str) -> AuthTokens:
    """The tokens of an auth answer; InvalidResponseError saying what required part is wrong.

    Optional fields the SDK cannot read are read as absent (the converter's rule): a login
    never fails over them.
    """
    try:
        tokens = structure(answer, AuthTokens)
    except ConversionError as exc:
        # The converter names fields and JSON types, never values: this answer holds secrets.
        raise InvalidResponseError(f"POST {path} answered without a usable token: {exc}") from None
    access = tokens.access_token
    if not access or any(ord(c) < 0x21 or ord(c) == 0x7F for c in access):
        # It becomes a header value: control characters would be refused (or worse, injected).
        raise InvalidResponseError(
            f"POST {path} answered with an unusable accessToken "
            "(empty, or holding spaces or control characters)"
        )
    return tokens


def _copy_error(error: Exception) -> Exception:
    """A new exception of `error`'s class, message and attributes, without its traceback."""
    copy = error.__class__.__new__(error.__class__)
    copy.args = error.args
    copy.__dict__.update(error.__dict__)
    return copy


def keeper_for(
    credentials: Credentials, call: AuthCall, *, share: TokenShare | None = None
) -> TokenKeeper:
    """The token keeper that fits these credentials (API keys may share their token)."""
    if isinstance(credentials, OrganizationToken):
        return StaticKeeper(credentials)
    return JwtKeeper(credentials, call, share=share)


def credentials_from_env(environ: Mapping[str, str]) -> Credentials:
    """The credentials the `TRANSACTIONLINK_*` variables name; errors name the variables."""
    token = environ.get("TRANSACTIONLINK_TOKEN")
    key = environ.get("TRANSACTIONLINK_API_KEY")
    secret = environ.get("TRANSACTIONLINK_API_SECRET")
    if token:
        if not token.startswith("tot_"):
            raise ValueError(
                "TRANSACTIONLINK_TOKEN must be an organization token (it starts with 'tot_'); "
                "for an API key and secret, unset TRANSACTIONLINK_TOKEN and set "
                "TRANSACTIONLINK_API_KEY and TRANSACTIONLINK_API_SECRET instead"
            )
        try:
            return OrganizationToken(token)
        except ValueError:
            raise ValueError(
                "TRANSACTIONLINK_TOKEN holds spaces or control characters "
                "(a stray newline from a file?): set it to the token alone"
            ) from None
    if key and secret:
        try:
            return ApiKey(key, secret)
        except ValueError:
            raise ValueError(
                "TRANSACTIONLINK_API_KEY or TRANSACTIONLINK_API_SECRET holds spaces or control "
                "characters (a stray newline from a file?): set each to the value alone"
            ) from None
    if key or secret:
        missing = "TRANSACTIONLINK_API_SECRET" if key else "TRANSACTIONLINK_API_KEY"
        raise ValueError(
            f"{missing} is not set: an API key needs both TRANSACTIONLINK_API_KEY and "
            "TRANSACTIONLINK_API_SECRET (or set TRANSACTIONLINK_TOKEN to an organization token)"
        )
    raise ValueError(
        "set TRANSACTIONLINK_TOKEN (an organization token, tot_...) or both "
        "TRANSACTIONLINK_API_KEY and TRANSACTIONLINK_API_SECRET"
    )
