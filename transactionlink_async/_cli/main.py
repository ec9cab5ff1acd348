"""Parsing the command line, running the command, and turning its outcome into an exit code."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio

from .. import TransactionLink, __version__
from ..errors import AuthenticationError, PermissionDeniedError, TransactionLinkError
from . import commands
from .output import Output

__all__ = [
    "EXIT_API",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_USAGE",
    "amain",
    "build_parser",
    "main",
]

EXIT_OK = 0
#: The workflow ended in FAILED, TIMEOUT, TERMINATED, EXPIRED or CANCELLED (or did not end
#: within --timeout).
EXIT_FAILED = 1
#: The command line or the environment is wrong: fix the call.
EXIT_USAGE = 2
#: The API answered with an error, or could not be reached or read.
EXIT_API = 3
#: Something failed that is neither the API nor the call: a bug, to report with --debug.
EXIT_INTERNAL = 4

_EPILOG = """\
credentials come from the environment: TRANSACTIONLINK_TOKEN (an organization token), or
TRANSACTIONLINK_API_KEY and TRANSACTIONLINK_API_SECRET; TRANSACTIONLINK_BASE_URL (or
--base-url) points at another server.

exit codes: 0 success; 1 the workflow ended in FAILED, TIMEOUT, TERMINATED, EXPIRED or
CANCELLED, or was not final when --timeout ran out; 2 usage error (arguments, missing
credentials, an incomplete installation, a bad line in a batch file); 3 the API answered
with an error or could not be reached (batch: a launch, wait or download failed, or a
launch is in doubt); 4 an unexpected failure (rerun with --debug and report it)."""

Command = Callable[[TransactionLink, argparse.Namespace, Output], Awaitable[int]]

#: What to check when the API refuses the credentials: the variables the CLI read them from.
CREDENTIALS_HINT = (
    "check TRANSACTIONLINK_TOKEN (an organization token, tot_...) or TRANSACTIONLINK_API_KEY "
    "and TRANSACTIONLINK_API_SECRET, and TRANSACTIONLINK_BASE_URL (or --base-url)"
)
PERMISSION_HINT = (
    "the credentials in TRANSACTIONLINK_TOKEN or TRANSACTIONLINK_API_KEY lack the right "
    "to do this (can_run / can_view_workspace)"
)

#: An example for each command's --help.
EXAMPLES = {
    "demo": "  transactionlink demo --workflows 20 --result-mb 50",
    "run": (
        "  transactionlink run --definition kyc --param name=Ada --param amount:=100 -o result.json"
    ),
    "status": "  transactionlink status 3f2a9c1e-... --json",
    "wait": "  transactionlink wait 3f2a9c1e-... --timeout 600 --poll-interval 5",
    "result": "  transactionlink result 3f2a9c1e-... -o result.json",
    "cancel": "  transactionlink cancel 3f2a9c1e-...",
    "batch": "  transactionlink batch launches.jsonl --journal run.db --wait --results results/",
}


def _epilog(name: str) -> str:
    example = EXAMPLES.get(name)
    return _EPILOG if example is None else f"example:\n{example}\n\n{_EPILOG}"


def _common(*, suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before and after the command name."""
    # Under a command the defaults are SUPPRESS, so they never overwrite a value given earlier.
    default: Any = argparse.SUPPRESS if suppress else None
    flag: Any = argparse.SUPPRESS if suppress else False
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--json", action="store_true", default=flag, help="print one JSON object on stdout"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=flag,
        help="log the SDK's requests and show tracebacks",
    )
    parser.add_argument(
        "--base-url",
        default=default,
        metavar="URL",
        help="the API's address (default: TRANSACTIONLINK_BASE_URL, else production)",
    )
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < math.inf:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transactionlink",
        description="Run and follow TransactionLink workflows from the command line.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = [_common(suppress=True)]
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from .demo import add_demo_arguments, demo

    demo_help = "the whole flow against an embedded fake server (no account needed)"
    demo_parser = sub.add_parser(
        "demo",
        parents=common,
        help=demo_help,
        description=demo_help,
        epilog=_epilog("demo"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_demo_arguments(demo_parser)
    demo_parser.set_defaults(handler=demo, needs_client=False)

    def command(name: str, handler: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            parents=common,
            help=help_text,
            description=help_text,
            epilog=_epilog(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler, needs_client=True)
        return p

    def wait_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--timeout", type=_seconds, metavar="SECONDS", help="give up waiting after this long"
        )
        p.add_argument(
            "--poll-interval",
            type=_seconds,
            metavar="SECONDS",
            help="first interval between status checks (default 1, growing to 30)",
        )

    run = command("run", commands.run, "initialise a workflow, wait for it, fetch its result")
    run.add_argument("--definition", required=True, help="the workflow definition id")
    run.add_argument("--locale", default="en", help="the workflow's language (default en)")
    run.add_argument(
        "--param",
        action="append",
        type=commands.parse_param,
        metavar="KEY=VALUE",
        help="a parameter; KEY:=JSON for numbers, booleans, lists (repeatable)",
    )
    wait_options(run)
    run.add_argument("-o", "--output", type=Path, metavar="FILE", help="save the result here")

    status = command("status", commands.status, "show an execution")
    status.add_argument("execution_id", metavar="ID")

    wait = command("wait", commands.wait, "wait until an execution is final")
    wait.add_argument("execution_id", metavar="ID")
    wait_options(wait)

    result = command("result", commands.result, "save (-o) or print an execution's result")
    result.add_argument("execution_id", metavar="ID")
    result.add_argument("-o", "--output", type=Path, metavar="FILE", help="save the result here")

    cancel = command("cancel", commands.cancel, "cancel an execution")
    cancel.add_argument("execution_id", metavar="ID")

    from .batch import batch as batch_command

    batch = command(
        "batch",
        batch_command,
        "launch every line of a JSON lines file through a journal; run it again to resume",
    )
    batch.add_argument(
        "file",
        type=Path,
        metavar="FILE.jsonl",
        help="one JSON object a line: key, workflowDefinitionId, locale, parameters",
    )
    batch.add_argument(
        "--journal",
        type=Path,
        required=True,
        metavar="FILE",
        help="the journal (SQLite) that remembers what was launched, waited for, downloaded",
    )
    batch.add_argument(
        "--concurrency", type=_count, default=10, metavar="N", help="launches in flight (10)"
    )
    batch.add_argument("--wait", action="store_true", help="wait until every execution is final")
    batch.add_argument(
        "--results",
        type=Path,
        metavar="DIR",
        help="save each completed execution's result in DIR/<key>.json (implies --wait)",
    )
    batch.add_argument(
        "--timeout", type=_seconds, metavar="SECONDS", help="give up waiting for one after this"
    )
    return parser


@contextlib.contextmanager
def _debug_logging(enabled: bool, stream: Any) -> Iterator[None]:
    """The SDK's debug log on `stream` while the command runs (nothing when not enabled)."""
    if not enabled:
        yield
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("transactionlink_async")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _make_client(args: argparse.Namespace) -> TransactionLink:
    overrides: dict[str, Any] = {}
    if args.base_url:
        overrides["base_url"] = args.base_url
    return TransactionLink.from_env(**overrides)


async def _execute(args: argparse.Namespace, out: Output) -> int:
    if not args.needs_client:
        code: int = await args.handler(args, out)
        return code
    async with _make_client(args) as tl:
        code = await args.handler(tl, args, out)
        return code


def _only_error(exc: BaseException) -> BaseException:
    """The single error inside (nested) exception groups, else the error itself."""
    inner = getattr(exc, "exceptions", None)
    while isinstance(inner, tuple) and len(inner) == 1 and isinstance(inner[0], BaseException):
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    return exc


async def amain(argv: Sequence[str] | None = None) -> int:
    """The command line inside a running event loop; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or argparse's own usage error
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or EXIT_OK
        return EXIT_USAGE
    out = Output(as_json=args.json)
    try:
        with _debug_logging(args.debug, out.stderr):
            return await _execute(args, out)
    except Exception as exc:  # every error becomes one line and an exit code
        error = _only_error(exc)
        if args.debug:
            traceback.print_exception(type(error), error, error.__traceback__, file=out.stderr)
        if isinstance(error, AuthenticationError):
            out.error(error, hint=CREDENTIALS_HINT)
            return EXIT_API
        if isinstance(error, PermissionDeniedError):
            out.error(error, hint=PERMISSION_HINT)
            return EXIT_API
        if isinstance(error, TransactionLinkError):
            out.error(error)
            return EXIT_API
        # A missing module is the installation's fault, not the API's: its message says
        # what to install.
        if isinstance(error, (ValueError, TypeError, ImportError)):
            out.error(error)
            return EXIT_USAGE
        if isinstance(error, OSError):
            out.error(error)
            return EXIT_API
        hint = None if args.debug else "rerun with --debug to see where it came from"
        out.error(error, hint=hint)
        return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """`transactionlink ...` and `python -m transactionlink_async ...`."""
    try:
        return anyio.run(amain, argv)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
