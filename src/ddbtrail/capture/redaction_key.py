"""The redaction policy and its HMAC key as a deployment sets them: read from the
environment, Secrets Manager or SSM at cold start. The policy itself is pure
(``ddbtrail.core.redact``); reading its key is I/O, so it lives here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ddbtrail.core.exceptions import ConfigError
from ddbtrail.core.redact import RedactionPolicy


def load_key(env: Mapping[str, str] | None = None, *, secretsmanager: Any = None,
             ssm: Any = None) -> bytes | None:
    """The HMAC key: REDACTION_KEY_SECRET_ARN (Secrets Manager), REDACTION_KEY_PARAMETER
    (SSM SecureString) or REDACTION_KEY (local). None when none is set.

    Clients are passed in; a missing one is created here, at call time (cold start).
    """
    env = os.environ if env is None else env
    try:
        if arn := env.get("REDACTION_KEY_SECRET_ARN"):
            if secretsmanager is None:
                import boto3

                secretsmanager = boto3.client("secretsmanager")
            secret = secretsmanager.get_secret_value(SecretId=arn)
            value = secret.get("SecretString")
            return value.encode() if value is not None else bytes(secret["SecretBinary"])
        if name := env.get("REDACTION_KEY_PARAMETER"):
            if ssm is None:
                import boto3

                ssm = boto3.client("ssm")
            return str(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
                       ).encode()
    except Exception as exc:
        raise ConfigError(f"cannot load the redaction key: {exc}") from exc
    local = env.get("REDACTION_KEY")
    return local.encode() if local else None


def policy_from_env(env: Mapping[str, str] | None = None, **clients: Any) -> RedactionPolicy | None:
    """REDACTION_POLICY (JSON) with its key, or None when no policy is set."""
    env = os.environ if env is None else env
    text = env.get("REDACTION_POLICY")
    if not text:
        return None
    return RedactionPolicy.from_json(text, load_key(env, **clients))
