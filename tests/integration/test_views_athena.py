"""``ddbtrail views --apply athena``: the view statements reach Athena (moto) as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ddbtrail.cli import main
from tests.sql.test_views import write_lake
from tests.unit.test_schema_infer import drift_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def athena_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """awswrangler's endpoint settings are process-wide: restore them after the test."""
    import awswrangler as wr

    monkeypatch.setattr(wr.config, "athena_endpoint_url", wr.config.athena_endpoint_url)
    monkeypatch.setattr(wr.config, "s3_endpoint_url", wr.config.s3_endpoint_url)


@pytest.mark.usefixtures("athena_config")
def test_apply_athena_runs_each_view_statement_in_the_database(
        moto_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = write_lake(tmp_path / "lake", drift_rows())
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket="athena-results-views")
    out_dir = tmp_path / "views"
    with pytest.raises(SystemExit) as exit_info:
        main(["views", "--table", "Orders", "--lake", lake.uri, "--out", str(out_dir),
              "--apply", "athena", "--database", "audit", "--workgroup", "primary",
              "--s3-output", "s3://athena-results-views/q/",
              "--endpoint-url", moto_server.endpoint_url, "--region", "us-east-1"])
    out, err = capsys.readouterr()
    assert exit_info.value.code in (0, None), err
    assert "created in Athena database audit" in out

    athena = moto_server.client("athena")
    ran = {}
    for query_id in athena.list_query_executions()["QueryExecutionIds"]:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if query_id in out:
            ran[execution["Query"]] = execution
    written = {p.read_text(encoding="utf-8") for p in out_dir.glob("*.sql")}
    assert len(written) == 2
    assert set(ran) == written
    for execution in ran.values():
        assert execution["QueryExecutionContext"]["Database"] == "audit"
        assert execution["Status"]["State"] == "SUCCEEDED"
