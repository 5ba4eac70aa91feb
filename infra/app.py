"""CDK app: ``CDK_OUTDIR=cdk.out python infra/app.py`` (what ``cdk synth`` runs).

Settings come from CDK context (``-c tables=orders,customers``), ``infra/config.json``
or ``-c config=path``; see docs/deploy.md. Synth is offline. cdk-nag's AwsSolutions
pack validates the app; a finding fails the synth unless acknowledged with a reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts infra/ first on sys.path, where infra/constructs would
# shadow the `constructs` library. Use the repository root instead.
_INFRA = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _INFRA]
sys.path.insert(0, str(_INFRA.parent))

from typing import Any  # noqa: E402

from aws_cdk import App, Environment, Tags, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from ddbtrail.core.exceptions import DdbtrailError  # noqa: E402
from infra import constants as C  # noqa: E402
from infra.config import KEYS, DeployConfig, load_config  # noqa: E402
from infra.stacks.ddbtrail_stack import DdbtrailStack  # noqa: E402


def context_values(app: App) -> dict[str, Any]:
    """The CDK context values this app reads (settings and ``config``)."""
    keys = (*KEYS, "config", "fmt")
    return {k: v for k in keys if (v := app.node.try_get_context(k)) is not None}


def build(app: App, cfg: DeployConfig, *, env: Environment | None = None) -> DdbtrailStack:
    """Add the ddbtrail stack and the cdk-nag AwsSolutions checks to ``app``."""
    stack = DdbtrailStack(app, cfg.stack_name, cfg=cfg, env=env,
                          description="ddbtrail: DynamoDB item-level audit trail and change lake")
    Tags.of(stack).add("project", "ddbtrail")
    # The acknowledged rules and their reasons also go into each resource's Metadata,
    # so the deployed template carries its own audit trail.
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return stack


def make_app(**kwargs: Any) -> App:
    """An App with the feature flags ddbtrail relies on (``kwargs`` go to App)."""
    # Path metadata, as `cdk synth` writes by default: `ddbtrail cost --template` finds
    # the stack's resources by their aws:cdk:path.
    context = {**C.FEATURE_FLAGS, "aws:cdk:enable-path-metadata": True,
               **kwargs.pop("context", {})}
    return App(context=context, **kwargs)


def main() -> int:
    app = make_app()
    try:
        cfg = load_config(context_values(app), config_file=C.DEFAULT_CONFIG_FILE)
        if cfg.demo_table and not cfg.tables:
            sys.stderr.write(f"note: no tables configured: capturing the demo table "
                             f"{cfg.demo_table_name} (capture yours with -c tables=a,b)\n")
        if cfg.format == "jsonl":
            sys.stderr.write("warning: format=jsonl: compaction sorts each closed partition into "
                             "one gzip file, but a lookup still reads every byte of the "
                             "partitions it covers (JSON has no row-group statistics to skip); "
                             "use format=parquet for large lakes (docs/deploy.md, Compaction)\n")
        build(app, cfg)
    except DdbtrailError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    app.synth()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
