"""Is a deployed trail healthy? The checks behind ``ddbtrail doctor``.

``run_checks("ddbtrail", boto3_session=session)`` finds the stack's resources through
CloudFormation and returns one ``Check`` per question (stream, mapping, on-failure queue,
Firehose, freshness, Glue, workgroup, maintenance, compaction lag); ``canary`` writes and
deletes a marker item and waits until both changes are queryable.

Example::

    import boto3
    from ddbtrail import health

    checks = health.run_checks("ddbtrail", boto3_session=boto3.Session(region_name="eu-west-1"))
    failed = [c for c in checks if not c.ok]
"""

from __future__ import annotations

from ddbtrail.health._canary import canary
from ddbtrail.health._checks import (
    FAIL,
    OK,
    STATUSES,
    WARN,
    Check,
    StreamMapping,
    check_compaction,
    check_firehose,
    check_freshness,
    check_glue,
    check_maintenance,
    check_mappings,
    check_on_failure_queues,
    check_streams,
    check_workgroup,
    load_mappings,
    run_checks,
)
from ddbtrail.health._deployment import Deployment, discover

__all__ = [
    "FAIL",
    "OK",
    "STATUSES",
    "WARN",
    "Check",
    "Deployment",
    "StreamMapping",
    "canary",
    "check_compaction",
    "check_firehose",
    "check_freshness",
    "check_glue",
    "check_maintenance",
    "check_mappings",
    "check_on_failure_queues",
    "check_streams",
    "check_workgroup",
    "discover",
    "load_mappings",
    "run_checks",
]
