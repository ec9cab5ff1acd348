"""The cattrs converter: the API's camelCase JSON <-> the SDK's attrs models."""

import contextlib
import logging
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from functools import cache, reduce
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._datetimes import format_datetime, parse_datetime
from .models import (
    ErrorDetail,
    ErrorResponse,
    LaunchRequest,
    Parameters,
    UnknownStatus,
    WorkflowExecution,
    WorkflowStatus,
    status_from_text,
)

__all__ = [
    "ConversionError",
    "converter",
    "json_name",
    "structure",
    "structure_execution",
    "unstructure",
]

T = TypeVar("T")

logger = logging.getLogger("transactionlink_async")

#: (model, field) pairs whose unreadable values were logged already: once each, bounded.
_UNREADABLE_LOGGED: set[tuple[str, str]] = set()
_UNREADABLE_LOG_LIMIT = 256

_JSON_OBJECT = Mapping[str, Any]
_STATUS_TYPE = WorkflowStatus | UnknownStatus
_NUMBER_TYPE = int | float


class ConversionError(ValueError):
    """A JSON document that does not fit the model it should become.

    The message names the model and the offending field (`.model`, `.field`), never a
    value: API documents carry secrets such as an interactive execution's `token`.
    """

    def __init__(self, message: str, *, model: str, field: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.field = field


class _Invalid(ValueError):
    """A hook's refusal; its text is shown to users, so it describes types, not values."""


class _InvalidItems(ValueError):
    """Some items of an array did not fit; keeps each failure with its index."""

    def __init__(self, failures: list[tuple[int, Exception]]) -> None:
        super().__init__("invalid array items")
        self.failures = failures


# Failures a broken document can cause inside cattrs; anything else is a bug and is left
# to surface as itself.
_CONVERSION_FAILURES = (ValueError, TypeError, KeyError, AttributeError, cattrs.BaseValidationError)


def _json_type(value: Any) -> str:
    """Name a value's JSON type for an error message (without showing the value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


_CAMEL_SPLIT = re.compile(r"_([a-z0-9])")


@cache
def json_name(field_name: str) -> str:
    """The API's camelCase key for a snake_case field name (`ui_options` -> `uiOptions`)."""
    return _CAMEL_SPLIT.sub(lambda m: m.group(1).upper(), field_name)


# --- leaf hooks: strict, because cattrs' defaults would turn null into "None" and 12 into
# "12" and so hide a broken answer behind plausible-looking data.


def _structure_str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Invalid(f"expected a string, got {_json_type(value)}")


def _structure_float(value: Any, _: Any) -> float:
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    # Numbers quoted as strings happen in auth answers; refusing them would fail a login
    # over a field the SDK can do without.
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    if number is None:
        raise _Invalid(f"expected a number, got {_json_type(value)}")
    # NaN and infinity (json.loads reads them, so does float()) are no durations.
    if not math.isfinite(number):
        raise _Invalid("expected a finite number")
    return number


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Invalid(f"expected an integer, got {_json_type(value)}")


def _structure_number(value: Any, _: Any) -> int | float:
    # Keep the JSON number as the parser made it: 3 stays int, 3.5 stays float.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise _Invalid(f"expected a number, got {_json_type(value)}")


def _structure_status(value: Any, _: Any) -> WorkflowStatus | UnknownStatus:
    if isinstance(value, str):
        # An unknown status is kept as its raw string: the API may add statuses, and
        # a poller must not crash on one.
        return status_from_text(value)
    raise _Invalid(f"expected a status string, got {_json_type(value)}")


def _structure_json_object(value: Any, _: Any) -> dict[str, Any]:
    # Free-form JSON is taken as parsed: copying it deeply would cost time and prove
    # nothing. The shallow copy keeps the model independent of the caller's dict.
    if isinstance(value, Mapping):
        return dict(value)
    raise _Invalid(f"expected an object, got {_json_type(value)}")


# Beyond this, an epoch number must be milliseconds (as seconds it would be after 5138).
_EPOCH_MILLIS_FROM = 100_000_000_000


def _structure_datetime(value: Any, _: Any) -> datetime:
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
    # Java services often write dates as epoch milliseconds; refusing them would fail a
    # create call (never retried) after the API already did the work.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) >= _EPOCH_MILLIS_FROM else value
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise _Invalid("epoch time out of range") from None
    raise _Invalid(f"expected an ISO 8601 date-time string, got {_json_type(value)}")


def _unstructure_datetime(value: datetime) -> str:
    try:
        return format_datetime(value)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None


def _is_optional(tp: Any) -> bool:
    return get_origin(tp) in (Union, UnionType) and NoneType in get_args(tp)


def _structure_optional_factory(tp: Any) -> Callable[[Any, Any], Any]:
    # cattrs' own Optional handler looks the inner hook up on every call; resolving it
    # once here keeps a 17-field execution cheap to parse.
    # `int | float | None` -> `int | float`, built with | so it equals the hooks' keys.
    inner_type: Any = reduce(operator.or_, (a for a in get_args(tp) if a is not NoneType))
    inner = converter.get_structure_hook(inner_type)

    def structure_optional(value: Any, _: Any) -> Any:
        if value is None:
            return None
        return inner(value, inner_type)

    return structure_optional


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _structure_tuple_factory(tp: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
    item_type = get_args(tp)[0]
    item_hook = converter.get_structure_hook(item_type)

    def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
        # null for a list means "none", which is what the SDK models say with ().
        if value is None:
            return ()
        if not isinstance(value, list):
            raise _Invalid(f"expected an array, got {_json_type(value)}")
        items = []
        failures: list[tuple[int, Exception]] = []
        for index, item in enumerate(value):
            try:
                items.append(item_hook(item, item_type))
            except _CONVERSION_FAILURES as exc:  # reported with its index, like cattrs does
                failures.append((index, exc))
        if failures:
            raise _InvalidItems(failures)
        return tuple(items)

    return structure_tuple


def _unstructure_tuple_factory(tp: Any) -> Callable[[tuple[Any, ...]], list[Any]]:
    def unstructure_tuple(value: tuple[Any, ...]) -> list[Any]:
        return [converter.unstructure(item) for item in value]

    return unstructure_tuple


def _structure_attrs_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
    # Every attrs model maps snake_case fields to the API's camelCase keys; unknown keys
    # are ignored (the API adds fields without notice). A field that may be absent (it
    # has a default) is read leniently: see _lenient_field_hook.
    attrs.resolve_types(cls)
    renames: Any = {
        a.name: override(rename=json_name(a.name))
        if a.default is attrs.NOTHING
        else override(rename=json_name(a.name), struct_hook=_lenient_field_hook(cls, a))
        for a in attrs.fields(cls)
    }
    generated = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=False, **renames)

    def structure_model(value: Any, _: Any) -> Any:
        # Checked here so that a list or a string gets a clear message, not a KeyError
        # or TypeError about indexing.
        if not isinstance(value, Mapping):
            raise _Invalid(f"expected an object, got {_json_type(value)}")
        return generated(value, cls)

    return structure_model


def _lenient_field_hook(
    cls: type[Any], attribute: "attrs.Attribute[Any]"
) -> Callable[[Any, Any], Any]:
    """The hook of a field that may be absent: an unreadable value reads as absent.

    The API's own schema allows answers the SDK cannot read (`"expiresAt": "string"`), and
    a creating call that failed over a field it can do without would lose what it created.
    Such a value is logged once at DEBUG (its field, never the value) and left at default.
    """
    inner = converter.get_structure_hook(attribute.type)
    default: Any = attribute.default
    factory = default.factory if isinstance(default, attrs.Factory) else None  # type: ignore[arg-type]
    model, key = cls.__name__, json_name(attribute.name)

    def structure_lenient(value: Any, tp: Any) -> Any:
        try:
            return inner(value, tp)
        except _CONVERSION_FAILURES as exc:
            _log_unreadable(model, key, exc)
            return factory() if factory is not None else default

    return structure_lenient


def _log_unreadable(model: str, key: str, exc: BaseException) -> None:
    if (model, key) in _UNREADABLE_LOGGED or len(_UNREADABLE_LOGGED) >= _UNREADABLE_LOG_LIMIT:
        return
    _UNREADABLE_LOGGED.add((model, key))
    path, reason = next(_problems(exc, key), (key, "invalid value"))
    logger.debug("an answer's %s.%s is unreadable (%s): read as absent", model, path, reason)


def _is_json_object(tp: Any) -> bool:
    return bool(tp == _JSON_OBJECT or tp == _JSON_OBJECT | None)


def _unstructure_json_object(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # The caller's free-form JSON is handed on as it is (a shallow dict): walking it here
    # would fail on nesting or cycles with a RecursionError, and would convert some values
    # (datetimes) that bodies built without a model then could not take. Encoding the body
    # (`_request.encode_body`) applies one rule to every body.
    return None if value is None else dict(value)


def _unstructure_attrs_factory(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    attrs.resolve_types(cls)
    renames: Any = {
        a.name: override(rename=json_name(a.name), unstruct_hook=_unstructure_json_object)
        if _is_json_object(a.type)
        else override(rename=json_name(a.name))
        for a in attrs.fields(cls)
    }
    generated = make_dict_unstructure_fn(cls, converter, **renames)

    def unstructure_model(value: Any) -> dict[str, Any]:
        # Request bodies leave unset fields out rather than send nulls, which the API may
        # read as "clear this". Only the model's own keys are filtered: a null inside the
        # caller's free-form parameters is theirs to send.
        return {k: v for k, v in generated(value).items() if v is not None}

    return unstructure_model


def _structure_parameters(value: Any, _: Any) -> Parameters:
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected an object, got {_json_type(value)}")
    # The answer of POST /parameters is undocumented: read the id under either name.
    raw = value.get("id")
    if raw is None:
        raw = value.get("parametersId")
    if raw is None:
        raise _Invalid("neither 'id' nor 'parametersId' is present")
    if not isinstance(raw, str):
        raise _Invalid(f"the id is not a string but a {_json_type(raw)}")
    return Parameters(id=raw)


def _tolerant_str(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _structure_error_response(value: Any, _: Any) -> ErrorResponse:
    # Error bodies are read while something already went wrong; a sloppy one must still
    # yield its fingerprint and messages rather than a second error.
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected an object, got {_json_type(value)}")
    fingerprint = value.get("fingerprint")
    raw_errors = value.get("errors")
    details: list[ErrorDetail] = []
    if isinstance(raw_errors, list):
        for item in raw_errors:
            if isinstance(item, Mapping):
                details.append(
                    ErrorDetail(
                        code=_tolerant_str(item.get("code")),
                        message=_tolerant_str(item.get("message")),
                    )
                )
            elif isinstance(item, str):
                details.append(ErrorDetail(code="", message=item))
    return ErrorResponse(
        fingerprint=None if fingerprint is None else _tolerant_str(fingerprint),
        errors=tuple(details),
    )


def _structure_error_detail(value: Any, _: Any) -> ErrorDetail:
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected an object, got {_json_type(value)}")
    return ErrorDetail(
        code=_tolerant_str(value.get("code")), message=_tolerant_str(value.get("message"))
    )


def _unstructure_launch_request_factory(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    unstructure_model = _unstructure_attrs_factory(cls)

    def unstructure_launch_request(value: LaunchRequest) -> dict[str, Any]:
        body = unstructure_model(value)
        # The journal's name for the request, not an API field.
        body.pop("key", None)
        # POST /workflows requires `parameters`, even when there are none.
        body.setdefault("parameters", {})
        return body

    return unstructure_launch_request


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
    # Registered in order of generality: cattrs tries the most recent registration first.
    conv.register_structure_hook_factory(attrs.has, _structure_attrs_factory)
    conv.register_unstructure_hook_factory(attrs.has, _unstructure_attrs_factory)
    conv.register_structure_hook_factory(_is_homogeneous_tuple, _structure_tuple_factory)
    conv.register_unstructure_hook_factory(_is_homogeneous_tuple, _unstructure_tuple_factory)
    conv.register_structure_hook_factory(_is_optional, _structure_optional_factory)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, _unstructure_datetime)
    conv.register_structure_hook_func(lambda t: t == _STATUS_TYPE, _structure_status)
    conv.register_structure_hook_func(lambda t: t == _NUMBER_TYPE, _structure_number)
    conv.register_structure_hook_func(lambda t: t == _JSON_OBJECT, _structure_json_object)
    conv.register_unstructure_hook(WorkflowStatus, lambda s: s.value)
    conv.register_unstructure_hook(UnknownStatus, str)
    conv.register_structure_hook(Parameters, _structure_parameters)
    conv.register_structure_hook(ErrorResponse, _structure_error_response)
    conv.register_structure_hook(ErrorDetail, _structure_error_detail)
    conv.register_unstructure_hook_factory(
        lambda t: t is LaunchRequest, _unstructure_launch_request_factory
    )
    return conv


converter: cattrs.Converter = _make_converter()


def _note(exc: BaseException, kind: type[Any]) -> Any:
    for note in getattr(exc, "__notes__", ()):
        if note.__class__ is kind:
            return note
    return None


def _problems(exc: BaseException, path: str) -> Iterator[tuple[str, str]]:
    """Flatten cattrs' nested errors into (JSON path, reason) pairs."""
    if isinstance(exc, ClassValidationError):
        for sub in exc.exceptions:
            note = _note(sub, AttributeValidationNote)
            key = json_name(note.name) if note is not None else ""
            yield from _problems(sub, f"{path}.{key}" if path and key else path or key)
    elif isinstance(exc, IterableValidationError):
        for sub in exc.exceptions:
            item = _note(sub, IterableValidationNote)
            yield from _problems(sub, f"{path}[{item.index}]" if item is not None else path)
    elif isinstance(exc, _InvalidItems):
        for index, sub in exc.failures:
            yield from _problems(sub, f"{path}[{index}]")
    elif isinstance(exc, KeyError):
        yield path, "is missing"
    elif isinstance(exc, _Invalid):
        yield path, str(exc)
    else:
        # Messages from elsewhere may quote the value; name the kind of failure only.
        yield path, f"invalid value ({type(exc).__name__})"


def _conversion_error(exc: BaseException, model: str) -> ConversionError:
    problems = list(_problems(exc, "")) or [("", "invalid document")]
    field, reason = problems[0]
    if not field:
        message = f"cannot read {model}: {reason}"
    elif reason == "is missing":
        message = f"cannot read {model}: field {field!r} is missing"
    else:
        message = f"cannot read {model}: field {field!r}: {reason}"
    if len(problems) > 1:
        more = len(problems) - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConversionError(message, model=model, field=field or None)


def structure(data: Any, cls: type[T]) -> T:
    """Build a `cls` from parsed JSON; raises `ConversionError` when the data does not fit."""
    if cls is WorkflowExecution:
        return structure_execution(data)  # type: ignore[return-value]
    try:
        return converter.structure(data, cls)
    except _CONVERSION_FAILURES as exc:
        # `from None`: the chained cattrs error could quote values, secrets included.
        raise _conversion_error(exc, getattr(cls, "__name__", repr(cls))) from None


_structure_execution_hook = converter.get_structure_hook(WorkflowExecution)


def _object(value: Any) -> dict[str, Any] | None:
    # The same shallow copy as _structure_json_object; the caller checked the type.
    return None if value is None else dict(value)


def _fast_execution(data: Any) -> WorkflowExecution | None:
    """The execution built directly from a well-typed document; None sends it to cattrs.

    Polling parses the same shape thousands of times a second, and cattrs' general hooks
    (a call and several isinstance checks per field) are most of the cost. A document with
    any field that is not plainly right (a wrong type, a date that does not parse) returns
    None, so that cattrs reads it and words the error exactly as before. The tests check
    with hypothesis that both paths agree.
    """
    if type(data) is not dict:
        return None
    get = data.get
    execution_id = get("id")
    status = get("status")
    workflow_definition_id = get("workflowDefinitionId")
    case_id = get("caseId")
    record_id = get("recordId")
    workspace_id = get("workspaceId")
    name = get("name")
    revision = get("revision")
    locale = get("locale")
    execution_type = get("executionType")
    link = get("link")
    token = get("token")
    parameters = get("parameters")
    ui_options = get("uiOptions")
    origin = get("origin")
    execution_version = get("executionVersion")
    expires_at = get("expiresAt")
    if not (
        type(execution_id) is str
        and type(status) is str
        and (workflow_definition_id is None or type(workflow_definition_id) is str)
        and (case_id is None or type(case_id) is str)
        and (record_id is None or type(record_id) is str)
        and (workspace_id is None or type(workspace_id) is str)
        and (name is None or type(name) is str)
        and (revision is None or type(revision) is str)
        and (locale is None or type(locale) is str)
        and (execution_type is None or type(execution_type) is str)
        and (link is None or type(link) is str)
        and (token is None or type(token) is str)
        and (parameters is None or type(parameters) is dict)
        and (ui_options is None or type(ui_options) is dict)
        and (origin is None or type(origin) is dict)
        and (
            execution_version is None
            or type(execution_version) is int
            or type(execution_version) is float
        )
    ):
        return None
    if expires_at is not None:
        if type(expires_at) is not str:
            return None
        try:
            expires_at = parse_datetime(expires_at)
        except ValueError:
            return None
    return WorkflowExecution(
        id=execution_id,
        status=status_from_text(status),
        workflow_definition_id=workflow_definition_id,
        case_id=case_id,
        record_id=record_id,
        workspace_id=workspace_id,
        name=name,
        revision=revision,
        locale=locale,
        parameters=_object(parameters),
        expires_at=expires_at,
        execution_type=execution_type,
        execution_version=execution_version,
        ui_options=_object(ui_options),
        link=link,
        token=token,
        origin=_object(origin),
    )


def structure_execution(data: Any) -> WorkflowExecution:
    """`structure(data, WorkflowExecution)`, with a fast path for well-typed documents."""
    fast = _fast_execution(data)
    if fast is not None:
        return fast
    try:
        result: WorkflowExecution = _structure_execution_hook(data, WorkflowExecution)
    except _CONVERSION_FAILURES as exc:
        raise _conversion_error(exc, "WorkflowExecution") from None
    return result


def unstructure(obj: Any) -> Any:
    """Turn a model (or plain data holding models) into JSON-ready data with camelCase keys.

    Unset (`None`) model fields are left out; datetimes become ISO 8601 in UTC ("Z").
    """
    try:
        return converter.unstructure(obj)
    except _Invalid as exc:
        model = type(obj).__name__
        raise ConversionError(f"cannot write {model}: {exc}", model=model) from None
