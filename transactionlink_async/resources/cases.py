"""`POST /cases`: the person or company a v1 workflow runs for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._request import ApiRequest
from .._retry import RetryMode
from .._validate import check_optional_str
from ..models import Case, CaseDocument, Phone
from ._base import Resource


def _phone_body(phone: Phone | Mapping[str, str] | None) -> dict[str, str] | None:
    if phone is None:
        return None
    if isinstance(phone, Phone):
        return {"countryCode": phone.country_code, "number": phone.number}
    if isinstance(phone, Mapping):
        code = phone.get("country_code", phone.get("countryCode"))
        number = phone.get("number")
        if not isinstance(code, str) or not isinstance(number, str):
            raise TypeError("phone needs str 'country_code' and 'number'")
        return {"countryCode": code, "number": number}
    raise TypeError(f"phone must be a Phone or a mapping, got {type(phone).__name__}")


def _document_body(document: CaseDocument | Mapping[str, str]) -> dict[str, str]:
    if isinstance(document, CaseDocument):
        items = {
            "resourceId": document.resource_id,
            "resourceName": document.resource_name,
            "resourcePath": document.resource_path,
        }
    elif isinstance(document, Mapping):
        items = {
            "resourceId": document.get("resource_id", document.get("resourceId")),
            "resourceName": document.get("resource_name", document.get("resourceName")),
            "resourcePath": document.get("resource_path", document.get("resourcePath")),
        }
    else:
        raise TypeError(f"documents must hold CaseDocument items, got {type(document).__name__}")
    return {k: check_optional_str(k, v) for k, v in items.items() if v is not None}  # type: ignore[misc]


class Cases(Resource):
    """Cases: who a v1 workflow is about."""

    async def create(
        self,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        personal_number: str | None = None,
        email: str | None = None,
        phone: Phone | Mapping[str, str] | None = None,
        company_name: str | None = None,
        company_number: str | None = None,
        company_address: str | None = None,
        documents: Iterable[CaseDocument | Mapping[str, str]] = (),
    ) -> Case:
        """Create a case; every field is optional."""
        texts = {
            "firstName": check_optional_str("first_name", first_name),
            "lastName": check_optional_str("last_name", last_name),
            "personalNumber": check_optional_str("personal_number", personal_number),
            "email": check_optional_str("email", email),
            "companyName": check_optional_str("company_name", company_name),
            "companyNumber": check_optional_str("company_number", company_number),
            "companyAddress": check_optional_str("company_address", company_address),
        }
        if isinstance(documents, (str, bytes, Mapping)):
            raise TypeError("documents must be an iterable of CaseDocument")
        body: dict[str, Any] = {k: v for k, v in texts.items() if v is not None}
        phone_body = _phone_body(phone)
        if phone_body is not None:
            body["phone"] = phone_body
        document_bodies = [_document_body(d) for d in documents]
        if document_bodies:
            body["documents"] = document_bodies
        request = ApiRequest(method="POST", path="/cases", json=body, mode=RetryMode.CREATING)
        return await self._send_model(request, Case)
