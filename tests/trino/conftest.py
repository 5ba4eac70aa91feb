"""A real Trino server for the ``trino`` tests, one per session, over lakes built here.

The server is the pinned release of ``ddbtrail.query.trino_local`` (fetched once into the
cache). Without Java 24+ or Maven the tests skip, unless ``DDBTRAIL_REQUIRE_TRINO=1`` (CI
sets it): then a server that cannot start is a failure, so a CI run never passes with the
Trino suite skipped.

Each lake gets its own schema in the ``hive`` catalog (and in ``iceberg`` for an Iceberg
lake), with the tables made from the Glue definitions in ``glue/`` and the saved views.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.core.exceptions import QueryError
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved
from ddbtrail.query import trino as engine
from ddbtrail.query.trino_local import HIVE_CATALOG, ICEBERG_CATALOG, LocalTrino, java_home
from ddbtrail.resources import glue_dir

CLOUDTRAIL_DIR = "_cloudtrail"
CLOUDTRAIL_START = "2024/01/01"
REQUIRE = os.environ.get("DDBTRAIL_REQUIRE_TRINO") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"DDBTRAIL_REQUIRE_TRINO=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def trino_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTrino]:
    """The local Trino, started once per session and stopped at its end."""
    try:
        java_home()
    except QueryError as exc:
        _unavailable(str(exc))
    if shutil.which("mvn") is None and not os.environ.get("DDBTRAIL_TRINO_CACHE"):
        _unavailable("no mvn to fetch Trino")
    server = LocalTrino(tmp_path_factory.mktemp("trino"), heap="1G")
    try:
        server.start()
    except QueryError as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


def glue_table(name: str) -> dict[str, Any]:
    """A Glue TableInput from glue/ (the Iceberg file wraps it in ``TableInput``)."""
    data = json.loads((glue_dir() / name).read_text(encoding="utf-8"))
    return dict(data.get("TableInput", data))


@dataclass
class TrinoLake:
    """A lake and the Trino schema whose tables read it."""

    lake: Lake
    root: Path
    catalog: str
    schema: str
    con: Any

    def settings(self, port: int) -> engine.TrinoSettings:
        return engine.TrinoSettings(port=port, catalog=self.catalog, schema=self.schema)


def views_in_order() -> list[saved.Query]:
    """The saved views, each after the views it reads (as the state machine creates them)."""
    views = {saved.view_name(q): q for q in saved.catalogue() if q.kind == "view"}
    done: list[str] = []
    while len(done) < len(views):
        ready = [n for n, q in sorted(views.items()) if n not in done
                 and all(t in done for t in saved._tables_read(q.sql) & views.keys())]
        assert ready, f"saved views read each other in a circle: {set(views) - set(done)}"
        done += ready
    return [views[n] for n in done]


def connect(server: LocalTrino, catalog: str, schema: str | None = None) -> Any:
    return engine.connect(engine.TrinoSettings(port=server.port, catalog=catalog,
                                               schema=schema or "default"))


def register(server: LocalTrino, lake: Lake, root: Path, *, fmt: str = "parquet",
             table_names: list[str] | None = None) -> TrinoLake:
    """Create a schema for ``lake`` with the stack's tables and the saved views."""
    schema = "lake_" + uuid.uuid4().hex[:10]
    location = f"local://{root}/"
    hive = connect(server, HIVE_CATALOG)
    engine.execute(hive, f"CREATE SCHEMA {HIVE_CATALOG}.{schema}")
    names = table_names or ["Orders"]
    iceberg = fmt == "iceberg"
    if not iceberg:
        engine.execute(hive, engine.table_ddl(
            glue_table(f"changes.{fmt}.json"), name=f"{HIVE_CATALOG}.{schema}.changes",
            location=location, table_names=names))
    engine.execute(hive, engine.table_ddl(
        glue_table("snapshots.parquet.json"), name=f"{HIVE_CATALOG}.{schema}.snapshots",
        location=location, table_names=names))
    # receipts over <lake>/_ddbtrail/receipts/table=<t>/dt=<d>/ (empty unless a test writes them).
    engine.execute(hive, engine.table_ddl(
        glue_table("receipts.json"), name=f"{HIVE_CATALOG}.{schema}.receipts",
        location=location, table_names=names))
    # cloudtrail_logs over <lake>/_cloudtrail/yyyy/MM/dd/ (empty unless a test writes it).
    engine.execute(hive, engine.table_ddl(
        engine.cloudtrail_table_input(f"{location}{CLOUDTRAIL_DIR}/", CLOUDTRAIL_START),
        name=f"{HIVE_CATALOG}.{schema}.cloudtrail_logs", location=location))
    catalog = HIVE_CATALOG
    if iceberg:
        catalog = ICEBERG_CATALOG
        ice = connect(server, ICEBERG_CATALOG)  # the same metastore: the schema exists
        engine.execute(ice, f"CALL {ICEBERG_CATALOG}.system.register_table("
                            f"schema_name => '{schema}', table_name => 'changes', "
                            f"table_location => 'file://{root}/ddbtrail/changes')")
    con = connect(server, catalog, schema)
    for query in views_in_order():
        engine.execute(con, f"CREATE OR REPLACE VIEW {saved.view_name(query)} AS {query.sql}")
    return TrinoLake(lake, root, catalog, schema, con)
