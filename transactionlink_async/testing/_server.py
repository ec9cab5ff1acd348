"""FakeTransactionLink: the in-process fake of the TransactionLink API for tests and benchmarks."""

from __future__ import annotations

import asyncio
import json
import math
import ssl as ssl_module
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from ._api import FakeApi, large_result_key
from ._auth import TokenStore
from ._faults import DropMode, FaultRule, FaultRules
from ._http import ApiError, error_response
from ._journal import Journal, JournalEntry
from ._limits import AnswerDelay, RateLimitRule, RouteControls
from ._s3 import FakeS3, S3Result
from ._stats import RouteStats
from ._webhooks import WebhookSender
from ._workflows import WorkflowScript, default_result

__all__ = ["FakeTransactionLink"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Handlers wake up at once on close; this only bounds a handler stuck elsewhere.
_SHUTDOWN_TIMEOUT = 2.0
# Benchmarks post large parameter sets; aiohttp's 1 MiB default would answer 413.
_CLIENT_MAX_SIZE = 64 * 1024 * 1024
# The fake's own endpoints: never journaled, counted or faulted.
_FAKE_PREFIX = "/_fake/"


class FakeTransactionLink:
    """An aiohttp.web server on 127.0.0.1 (ephemeral port) that speaks the TransactionLink API.

    Use as `async with FakeTransactionLink() as fake:` and point a client at
    `fake.base_url` with `fake.org_token` or `fake.api_key`/`fake.api_secret`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_token_lifetime: float = 3600.0,
        include_expiry_duration: bool = True,
        refresh_token_single_use: bool = True,
        inline_result_limit: int = 9 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
        parameters_id_key: str = "id",
        org_token: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        journal_limit: int | None = None,
        s3_url_lifetime: float = 300.0,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
            raise TypeError(f"ssl must be a server-side ssl.SSLContext, got {type(ssl).__name__}")
        # Serves HTTPS (the API and the fake S3) with this context when given.
        self._ssl = ssl
        self._host = host
        self._requested_port = port
        self._tokens = TokenStore(
            org_token=org_token,
            api_key=api_key,
            api_secret=api_secret,
            access_token_lifetime=access_token_lifetime,
            include_expiry_duration=include_expiry_duration,
            refresh_token_single_use=refresh_token_single_use,
        )
        # Its own listener: a different host:port than the API, as S3 is.
        self._s3 = FakeS3(host=host, url_lifetime=s3_url_lifetime, ssl=ssl)
        self._api = FakeApi(
            self._tokens,
            clock=clock,
            parameters_id_key=parameters_id_key,
            inline_result_limit=inline_result_limit,
            s3=self._s3,
        )
        self._webhooks = WebhookSender(self._api.keyring, self._api.snapshot, feed=self._api)
        self._api.status_listeners.append(self._webhooks.status_may_have_changed)
        self._journal = Journal(journal_limit)
        self._stats = RouteStats()
        self._faults = FaultRules()
        self._controls = RouteControls()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = asyncio.Event()
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the socket and start serving."""
        if self._runner is not None or self._closed:
            raise RuntimeError("a FakeTransactionLink can be started once")
        app = web.Application(middlewares=[self._middleware], client_max_size=_CLIENT_MAX_SIZE)
        app.add_routes(self._api.routes())
        app.add_routes(
            [
                web.get(_FAKE_PREFIX + "stats", self._stats_handler),
                web.post(_FAKE_PREFIX + "workflows/{definition_id}", self._define_handler),
                web.post(_FAKE_PREFIX + "webhooks/subscribe", self._subscribe_handler),
                web.post(_FAKE_PREFIX + "webhooks/unsubscribe", self._subscribe_handler),
                web.get(_FAKE_PREFIX + "finishes", self._finishes_handler),
                web.get(_FAKE_PREFIX + "rate_limits", self._controls_handler),
                web.post(_FAKE_PREFIX + "rate_limits", self._rate_limit_handler),
                web.delete(_FAKE_PREFIX + "rate_limits", self._rate_limit_handler),
                web.post(_FAKE_PREFIX + "delays", self._delay_handler),
                web.delete(_FAKE_PREFIX + "delays", self._delay_handler),
            ]
        )
        # handler_cancellation: a client that hangs up ends a delayed handler at once.
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT, access_log=None
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port, ssl_context=self._ssl)
            await site.start()
            await self._s3.start()
        except BaseException:
            await runner.cleanup()
            await self._s3.aclose()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def aclose(self) -> None:
        """Stop serving and close every client connection; safe to call twice."""
        self._closed = True
        self._closing.set()
        await self._webhooks.aclose()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._s3.aclose()

    async def __aenter__(self) -> FakeTransactionLink:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- where and who -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the fake server is not started; use `async with` or start()")
        return self._port

    @property
    def base_url(self) -> str:
        """ "http://127.0.0.1:PORT" ("https://..." when serving TLS), no trailing slash."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        scheme = "http" if self._ssl is None else "https"
        return f"{scheme}://{host}:{self.port}"

    @property
    def org_token(self) -> str:
        return self._tokens.org_token

    @property
    def api_key(self) -> str:
        return self._tokens.api_key

    @property
    def api_secret(self) -> str:
        return self._tokens.api_secret

    # -- tokens --------------------------------------------------------------------------

    def expire_access_tokens(self) -> None:
        """Refuse (401) every access JWT issued so far; new ones work."""
        self._tokens.expire_access_tokens()

    def revoke_refresh_tokens(self) -> None:
        """Refuse (401) every refresh token issued so far; authorize still works."""
        self._tokens.revoke_refresh_tokens()

    def set_access_token_lifetime(self, seconds: float) -> None:
        """Lifetime (JWT `exp` and `expiryDuration`) of the access tokens issued from now on."""
        self._tokens.access_token_lifetime = seconds

    @property
    def access_tokens_issued(self) -> int:
        return self._tokens.access_tokens_issued

    # -- workflows -----------------------------------------------------------------------

    @property
    def clock(self) -> Callable[[], float]:
        """The clock that time-based workflow progress is measured on."""
        return self._api.clock

    @property
    def inline_result_limit(self) -> int:
        return self._api.inline_result_limit

    def define_workflow(
        self,
        definition_id: str,
        *,
        statuses: tuple[str, ...] = ("COMPLETED",),
        polls_per_status: int = 1,
        seconds_per_status: float | None = None,
        interactive: bool = False,
        result: object = default_result,
        name: str | None = None,
        finish_between: tuple[float, float] | None = None,
        seed: int | None = None,
    ) -> WorkflowScript:
        """Script the executions of a definition started from now on (see WorkflowScript).

        `finish_between=(low, high)` gives each execution its own finishing time, uniform
        in that many seconds after its start (reproducible with `seed`); `finishes_at(id)`
        tells when.
        """
        script = WorkflowScript(
            statuses=tuple(statuses),
            polls_per_status=polls_per_status,
            seconds_per_status=seconds_per_status,
            interactive=interactive,
            result=result,
            name=name,
            finish_between=finish_between,
            seed=seed,
        )
        self._api.scripts[definition_id] = script
        return script

    def finishes_at(self, execution_id: str) -> float | None:
        """When a clock-driven execution reaches its last status, on `fake.clock` (None when
        it advances by polls). The default clock is time.monotonic, which other processes
        on the same machine share."""
        return self._api.finishes_at(execution_id)

    def set_status(self, execution_id: str, status: str) -> None:
        """Put an execution in `status` for good, whatever its script says."""
        self._api.execution(execution_id).progress.pin(status)
        self._api.status_may_have_changed(execution_id)

    def set_result(self, execution_id: str, result: object) -> None:
        """Replace an execution's result: JSON, raw bytes, a callable of the id, or None.

        A result larger than `inline_result_limit` is stored in `fake.s3` and `/result`
        answers `{"$redirect": url}`, as the real service does over 9 MB.
        """
        self._api.execution(execution_id).set_result(result)

    def create_execution(
        self,
        result: object = default_result,
        *,
        definition_id: str = "fake-workflow",
        status: str = "COMPLETED",
    ) -> str:
        """Add an execution already in `status` with `result` (see set_result); its id."""
        return self._api.create_execution(definition_id, status=status, result=result).id

    # -- large results (the fake S3) -----------------------------------------------------

    @property
    def s3(self) -> FakeS3:
        """The fake S3 that large results redirect to: objects, faults, journal."""
        return self._s3

    def set_large_result(
        self,
        execution_id: str,
        *,
        size: int,
        seed: int = 0,
        multipart_etag: bool = False,
        key: str | None = None,
    ) -> str:
        """Make the execution's result a generated `{"records": [...]}` of `size` bytes in S3.

        `/result` then answers `{"$redirect": url}` with a fresh pre-signed URL per call.
        Returns the object's key (see `fake.s3`).
        """
        execution = self._api.execution(execution_id)
        key = key or large_result_key(execution_id)
        self._s3.put_generated(
            key, size, seed=seed, multipart_etag=multipart_etag, encode_slash=True
        )
        execution.set_result(S3Result(key))
        return key

    def set_stored_result(
        self,
        execution_id: str,
        data: bytes,
        *,
        content_encoding: str | None = None,
        multipart_etag: bool = False,
        key: str | None = None,
    ) -> str:
        """Make the execution's result these exact bytes in S3 (e.g. gzip with its encoding)."""
        execution = self._api.execution(execution_id)
        key = key or large_result_key(execution_id)
        self._s3.put(
            key,
            data,
            content_encoding=content_encoding,
            multipart_etag=multipart_etag,
            encode_slash=True,
        )
        execution.set_result(S3Result(key))
        return key

    @property
    def executions(self) -> dict[str, dict[str, Any]]:
        """A snapshot of every execution's current JSON by id (reading it is not a poll)."""
        return self._api.snapshot()

    @property
    def cases(self) -> dict[str, dict[str, Any]]:
        """The cases created, by caseId (the 201 answers)."""
        return self._api.cases

    @property
    def parameter_sets(self) -> dict[str, dict[str, Any]]:
        """The bodies posted to /parameters, by their id."""
        return self._api.parameter_sets

    # -- webhooks ------------------------------------------------------------------------

    @property
    def webhooks(self) -> WebhookSender:
        """The webhook sender: signing keys (served at /auth/webhooks/key/{kid}),
        deliveries to any URL, and automatic events for subscribed URLs."""
        return self._webhooks

    # -- journal -------------------------------------------------------------------------

    @property
    def journal(self) -> list[JournalEntry]:
        """Every request seen, in arrival order (the live list)."""
        return self._journal.entries

    def requests(
        self, method: str | None = None, path_glob: str | None = None
    ) -> list[JournalEntry]:
        """Journal entries matching a method ("*"/None = any) and a path glob."""
        return self._journal.requests(method, path_glob)

    def count(self, method: str | None, path_glob: str | None) -> int:
        """How many journal entries match."""
        return self._journal.count(method, path_glob)

    async def next_request(
        self, method: str | None = None, path_glob: str | None = None, *, timeout: float
    ) -> JournalEntry | None:
        """Wait for the next matching request to arrive; None when none came within `timeout`.

        To show that something was *not* sent: `assert await fake.next_request("POST",
        "/workflows", timeout=0.5) is None` returns at once, failing, if it is sent.
        """
        if not 0 < timeout < math.inf:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        return await self._journal.next_request(method, path_glob, timeout)

    def in_flight(self, method: str | None = None, path_glob: str | None = None) -> int:
        """Matching requests being handled right now."""
        return self._journal.in_flight(method, path_glob)

    def max_in_flight(self, method: str | None = None, path_glob: str | None = None) -> int:
        """The most matching requests ever handled at the same time."""
        return self._journal.max_in_flight(method, path_glob)

    def stats(self) -> dict[str, Any]:
        """Whole-run counts (unlike the journal, never trimmed), also served as JSON at
        `GET /_fake/stats` for a client in another process.

        `requests`, `peak_in_flight` and `answers` (counts per status, e.g. `"429"`) are
        keyed by "METHOD /route/{pattern}", e.g. "POST /workflows" or "GET /workflows/{id}";
        `executions` counts those created.
        """
        return {
            **self._stats.snapshot(),
            "access_tokens_issued": self._tokens.access_tokens_issued,
            "executions": len(self._api.snapshot()),
        }

    async def _stats_handler(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats())

    # -- control from another process (benchmarks): /_fake/... ---------------------------

    async def _define_handler(self, request: web.Request) -> web.StreamResponse:
        """`POST /_fake/workflows/{definition_id}` with define_workflow's keyword arguments
        (JSON: statuses, polls_per_status, seconds_per_status, finish_between, seed, ...)."""
        options = await request.json()
        allowed = {
            "statuses",
            "polls_per_status",
            "seconds_per_status",
            "interactive",
            "name",
            "finish_between",
            "seed",
        }
        if not isinstance(options, dict) or not set(options) <= allowed:
            return error_response(400, f"give a JSON object with some of {sorted(allowed)}")
        if "statuses" in options:
            options["statuses"] = tuple(options["statuses"])
        if options.get("finish_between") is not None:
            options["finish_between"] = tuple(options["finish_between"])
        try:
            self.define_workflow(request.match_info["definition_id"], **options)
        except (TypeError, ValueError) as exc:
            return error_response(400, str(exc))
        return web.json_response({"defined": request.match_info["definition_id"]})

    async def _subscribe_handler(self, request: web.Request) -> web.StreamResponse:
        """`POST /_fake/webhooks/subscribe` (or `/unsubscribe`) with `{"url": ...}`:
        start (or stop) automatic events to that URL."""
        options = await request.json()
        url = options.get("url") if isinstance(options, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return error_response(400, 'give {"url": "http://..."}')
        if request.path.endswith("/unsubscribe"):
            self._webhooks.unsubscribe(url)
            return web.json_response({"unsubscribed": url})
        self._webhooks.subscribe(url)
        return web.json_response({"subscribed": url})

    async def _finishes_handler(self, request: web.Request) -> web.StreamResponse:
        """`GET /_fake/finishes`: when each clock-driven execution reaches its last status."""
        return web.json_response({"now": self._api.clock(), "finishes": self._api.finish_times()})

    async def _controls_handler(self, request: web.Request) -> web.StreamResponse:
        """`GET /_fake/rate_limits`: the rate limits and answer delays in force, with counts."""
        return web.json_response(self._controls.snapshot())

    async def _rate_limit_handler(self, request: web.Request) -> web.StreamResponse:
        """`POST /_fake/rate_limits` with `{"method", "path", "per_second", "burst"?,
        "retry_after"?}` sets a rate limit (see set_rate_limit); `DELETE` removes them all."""
        if request.method == "DELETE":
            self.clear_rate_limits()
            return web.json_response({"rate_limits": []})
        options = await _json_options(
            request, {"method", "path", "per_second"}, {"burst", "retry_after"}
        )
        if isinstance(options, web.Response):
            return options
        try:
            rule = self.set_rate_limit(options.pop("method"), options.pop("path"), **options)
        except (TypeError, ValueError) as exc:
            return error_response(400, str(exc))
        return web.json_response({"per_second": rule.per_second, "burst": rule.burst})

    async def _delay_handler(self, request: web.Request) -> web.StreamResponse:
        """`POST /_fake/delays` with `{"method", "path", "seconds"}` sets an answer delay
        (see set_answer_delay); `DELETE` removes them all."""
        if request.method == "DELETE":
            self.clear_answer_delays()
            return web.json_response({"delays": []})
        options = await _json_options(request, {"method", "path", "seconds"}, set())
        if isinstance(options, web.Response):
            return options
        try:
            delay = self.set_answer_delay(options["method"], options["path"], options["seconds"])
        except (TypeError, ValueError) as exc:
            return error_response(400, str(exc))
        return web.json_response({"seconds": delay.seconds})

    # -- rate limits and answer delays ---------------------------------------------------

    def set_rate_limit(
        self,
        method: str,
        path_glob: str,
        *,
        per_second: float,
        burst: float = 1.0,
        retry_after: float | None = None,
    ) -> RateLimitRule:
        """Refuse matching requests beyond `per_second` (a token bucket of `burst`) with 429.

        A refused request does nothing; its 429 carries `Retry-After` (`retry_after`
        seconds when given, else the time until a token is free, in whole seconds). Setting
        a limit again for the same method and glob replaces it, with a full bucket. The
        returned rule counts what it `admitted` and `refused`.
        """
        return self._controls.set_limit(
            RateLimitRule(method, path_glob, per_second, burst, retry_after)
        )

    def clear_rate_limits(self) -> None:
        """Remove every rate limit."""
        self._controls.clear_limits()

    def set_answer_delay(self, method: str, path_glob: str, seconds: float) -> AnswerDelay:
        """Send every matching answer `seconds` late, 429s included (0 removes the delay).

        Unlike a fault rule's `delay`, it never runs out: it stands for the API's latency.
        """
        return self._controls.set_delay(AnswerDelay(method, path_glob, seconds))

    def clear_answer_delays(self) -> None:
        """Remove every answer delay."""
        self._controls.clear_delays()

    # -- faults --------------------------------------------------------------------------

    def inject(
        self,
        method: str,
        path_glob: str,
        *,
        status: int | None = None,
        retry_after: str | float | None = None,
        body: Any = None,
        times: int | None = 1,
        drop: DropMode | None = None,
        delay: float = 0.0,
        truncate_at: int | None = None,
        content_type: str | None = None,
    ) -> FaultRule:
        """Add a fault rule (see FaultRule); rules match in insertion order."""
        return self._faults.add(
            FaultRule(
                method=method,
                path_glob=path_glob,
                status=status,
                retry_after=retry_after,
                body=body,
                times=times,
                drop=drop,
                delay=delay,
                truncate_at=truncate_at,
                content_type=content_type,
            )
        )

    def clear_faults(self) -> None:
        """Forget every fault rule not yet used up (faults_fired keeps its counts)."""
        self._faults.clear()

    @property
    def faults_fired(self) -> Counter[str]:
        """How often each kind of fault fired, by kind.

        Kinds: status, retry_after, drop_before_body, drop_after_body, delay, truncate.
        """
        return self._faults.fired

    # -- the request path ----------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path.startswith(_FAKE_PREFIX):
            return await handler(request)
        route = _route_key(request)
        self._stats.begin(route)
        entry = self._journal.begin(
            request.method, request.path, request.query_string, dict(request.headers)
        )
        try:
            response = await self._answer(request, handler, entry)
            if response is not None:
                entry.status = response.status
                return response
            return _drop(request)
        finally:
            self._journal.finish(entry)
            self._stats.finish(route, entry.status)

    async def _answer(
        self, request: web.Request, handler: _Handler, entry: JournalEntry
    ) -> web.StreamResponse | None:
        """The rate limit's refusal or the (possibly faulted) answer, after the answer delay."""
        retry_after = self._controls.admit(request.method, request.path, time.monotonic())
        response: web.StreamResponse | None
        if retry_after is not None:
            # Refused before anything else: no fault is spent and nothing is created.
            entry.faults = ("rate_limit",)
            response = error_response(
                429,
                "Too many requests: slow down",
                headers={"Retry-After": _seconds_header(retry_after)},
            )
        else:
            rule = self._faults.take(request.method, request.path)
            if rule is not None:
                entry.faults = rule.kinds
            response = await self._respond(request, handler, entry, rule)
        delay = self._controls.delay(request.method, request.path)
        if response is not None and await self._pause(delay):
            return None
        return response

    async def _respond(
        self,
        request: web.Request,
        handler: _Handler,
        entry: JournalEntry,
        rule: FaultRule | None,
    ) -> web.StreamResponse | None:
        """The answer to send, or None to drop the connection without one."""
        if rule is not None and rule.drop == "before_body":
            await self._pause(rule.delay)
            return None
        try:
            entry.body = await request.read()
        except web.HTTPException as exc:  # 413 for a body over client_max_size
            return error_response(exc.status, exc.reason)
        if rule is not None and rule.drop == "after_body":
            await self._pause(rule.delay)
            return None
        response: web.StreamResponse
        if rule is not None and rule.answers:
            response = _rule_response(rule)
        else:
            response = await _call(handler, request)
        if rule is None:
            return response
        retry_after = rule.retry_after_header
        if retry_after is not None:
            response.headers["Retry-After"] = retry_after
        if await self._pause(rule.delay):
            return None
        if rule.truncate_at is not None and isinstance(response, web.Response):
            return await _send_truncated(request, response, rule.truncate_at)
        return response

    async def _pause(self, delay: float) -> bool:
        """Wait `delay` seconds; True when the server began closing meanwhile."""
        if delay <= 0:
            return False
        try:
            await asyncio.wait_for(self._closing.wait(), delay)
        except asyncio.TimeoutError:
            return False
        return True


def _seconds_header(seconds: float) -> str:
    """Retry-After text: whole seconds as an integer, as HTTP writes them; else the decimal."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


async def _json_options(
    request: web.Request, required: set[str], optional: set[str]
) -> dict[str, Any] | web.Response:
    """The JSON object of a control request, or a 400 answer saying what it must hold."""
    try:
        options = await request.json()
    except ValueError:
        options = None
    if not isinstance(options, dict) or not required <= set(options) <= required | optional:
        wanted = sorted(required) + [f"{name}?" for name in sorted(optional)]
        return error_response(400, f"give a JSON object with {', '.join(wanted)}")
    return options


def _route_key(request: web.Request) -> str:
    """ "METHOD /route/{pattern}"; unknown paths share one key so the counts stay small."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else "<no route>"
    return f"{request.method} {canonical}"


async def _call(handler: _Handler, request: web.Request) -> web.StreamResponse:
    """Run a handler, turning its errors (and aiohttp's 404/405/413) into ErrorResponses."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, code=exc.code)
    except web.HTTPException as exc:
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, exc.reason, headers=headers)


def _rule_response(rule: FaultRule) -> web.Response:
    status = rule.status if rule.status is not None else 200
    if rule.body is None:
        return error_response(status, f"Injected fault: HTTP {status}")
    body = rule.body if isinstance(rule.body, bytes) else json.dumps(rule.body).encode()
    return web.Response(
        status=status,
        body=body,
        headers={"Content-Type": rule.content_type or "application/json"},
    )


def _drop(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        # abort, not close: nothing may be flushed, the client must see the connection die.
        transport.abort()
    # Never written: aiohttp notices the dead transport and skips it quietly.
    return web.Response()


async def _send_truncated(
    request: web.Request, response: web.Response, limit: int
) -> web.StreamResponse:
    body = response.body if isinstance(response.body, bytes) else b""
    stream = web.StreamResponse(status=response.status, reason=response.reason)
    for name, value in response.headers.items():
        if name.lower() != "content-length":
            stream.headers.add(name, value)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[:limit])
    transport = request.transport
    if transport is not None:
        # close, not abort: the partial bytes must reach the client before the FIN.
        transport.close()
    return stream
