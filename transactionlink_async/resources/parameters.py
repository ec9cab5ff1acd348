"""`POST /parameters`: a set of input parameters for a v1 workflow run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._request import ApiRequest
from .._retry import RetryMode
from .._validate import check_mapping
from ..models import Parameters as ParametersModel
from ._base import Resource


class Parameters(Resource):
    """Input parameters for `workflows.run`."""

    async def create(self, values: Mapping[str, Any]) -> ParametersModel:
        """Store `values` and return their id, to pass as `parameters_id` to `workflows.run`."""
        body = dict(check_mapping("values", values))
        request = ApiRequest(method="POST", path="/parameters", json=body, mode=RetryMode.CREATING)
        return await self._send_model(request, ParametersModel)
