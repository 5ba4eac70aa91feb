"""Step Functions' AWS SDK integrations, answered by a boto3 client, for tests.

``arn:aws:states:::aws-sdk:<service>:<action>`` calls the API with the task's Arguments as
its parameters; here the same call goes to a boto3 client (moto's, in tests), so botocore
checks the parameters against the service model, as Step Functions does. A client or
validation error fails the state as ``<Service>.<ErrorCode>``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

from tests.infra.asl import Resource, StatesError


def sdk_task(client: Any, action: str, service: str) -> Resource:
    """The task for ``aws-sdk:<service>:<action>`` (``putMetricData`` -> put_metric_data)."""
    method = getattr(client, "".join(f"_{c.lower()}" if c.isupper() else c for c in action))

    def task(arguments: dict[str, Any]) -> Any:
        try:
            response = method(**arguments)
        except ParamValidationError as exc:
            raise StatesError(f"{service}.ValidationException", str(exc)) from exc
        except ClientError as exc:
            raise StatesError(f"{service}.{exc.response['Error']['Code']}", str(exc)) from exc
        response.pop("ResponseMetadata", None)
        return response

    return task
