"""`python -m transactionlink_async.testing serve`: the fake API in its own process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence

from ._limits import AnswerDelay, RateLimitRule, parse_delay, parse_rate_limit
from ._s3data import GeneratedJson
from ._server import FakeTransactionLink


def _rate_limit(text: str) -> RateLimitRule:
    try:
        return parse_rate_limit(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _delay(text: str) -> AnswerDelay:
    try:
        return parse_delay(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m transactionlink_async.testing")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve the fake API; print one JSON line with its address and credentials"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument(
        "--access-token-lifetime", type=float, default=3600.0, help="seconds (default 3600)"
    )
    serve.add_argument(
        "--journal-limit",
        type=int,
        default=10_000,
        help="requests kept in the journal (default 10000), so long runs stay small",
    )
    serve.add_argument(
        "--s3-url-lifetime",
        type=float,
        default=300.0,
        help="seconds a pre-signed result URL stays valid (default 300)",
    )
    serve.add_argument(
        "--large-result-bytes",
        type=int,
        default=0,
        help="also create a COMPLETED execution whose result is a generated JSON document "
        "of this many bytes in the fake S3; its id is printed as large_result_id",
    )
    serve.add_argument("--large-result-seed", type=int, default=0)
    serve.add_argument(
        "--inline-result-bytes",
        type=int,
        default=0,
        help="also create a COMPLETED execution whose result, a generated JSON document of "
        "this many bytes, is answered inline (however large); its id is inline_result_id",
    )
    serve.add_argument(
        "--rate-limit",
        type=_rate_limit,
        action="append",
        default=[],
        metavar="'METHOD PATH PER_SECOND [burst=N] [retry_after=S]'",
        help="refuse matching requests beyond that rate with 429 + Retry-After, e.g. "
        "'POST /workflows 100 burst=10' (repeatable; also POST /_fake/rate_limits)",
    )
    serve.add_argument(
        "--delay",
        type=_delay,
        action="append",
        default=[],
        metavar="'METHOD PATH SECONDS'",
        help="send every matching answer that late, e.g. '* /** 0.1' "
        "(repeatable; also POST /_fake/delays)",
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Windows has no add_signal_handler; Ctrl+C still ends the process there.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    inline_limit = max(9 * 1024 * 1024, args.inline_result_bytes)
    async with FakeTransactionLink(
        host=args.host,
        port=args.port,
        access_token_lifetime=args.access_token_lifetime,
        journal_limit=args.journal_limit,
        s3_url_lifetime=args.s3_url_lifetime,
        inline_result_limit=inline_limit,
    ) as fake:
        for rule in args.rate_limit:
            fake.set_rate_limit(
                rule.method,
                rule.path_glob,
                per_second=rule.per_second,
                burst=rule.burst,
                retry_after=rule.retry_after,
            )
        for delay in args.delay:
            fake.set_answer_delay(delay.method, delay.path_glob, delay.seconds)
        line: dict[str, object] = {
            "base_url": fake.base_url,
            "org_token": fake.org_token,
            "api_key": fake.api_key,
            "api_secret": fake.api_secret,
            "s3_base_url": fake.s3.base_url,
        }
        if args.large_result_bytes > 0:
            execution_id = fake.create_execution()
            key = fake.set_large_result(
                execution_id, size=args.large_result_bytes, seed=args.large_result_seed
            )
            stored = fake.s3.get(key)
            body = stored.body
            line["large_result_id"] = execution_id
            line["large_result_bytes"] = stored.size
            line["large_result_md5"] = stored.md5_hex
            line["large_result_items"] = getattr(body, "item_count", None)
        if args.inline_result_bytes > 0:
            document = GeneratedJson(args.inline_result_bytes, seed=args.large_result_seed)
            line["inline_result_id"] = fake.create_execution(
                b"".join(document.read(0, document.size))
            )
            line["inline_result_items"] = document.item_count
        # One line, flushed: the parent process reads it to learn where to connect.
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
