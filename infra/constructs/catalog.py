"""The Glue database and the ``changes`` table, straight from ``ddbtrail.catalog.glue``."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_glue as glue
from constructs import Construct

from ddbtrail.catalog import glue as catalog


class Catalog(Construct):
    """Glue ``database`` and ``table`` (partition projection, so no crawler; with
    ``fmt="iceberg"`` an Iceberg table, ``catalog.iceberg_table``).

    The TableInput is ``ddbtrail.catalog.glue.table_input`` verbatim: the same definition the
    CLI and glue/ use, so the deployed columns cannot drift from ``ddbtrail.core.row``.
    """

    def __init__(self, scope: Construct, cid: str, *, database: str, fmt: str,
                 location: str, table_names: Sequence[str]) -> None:
        super().__init__(scope, cid)
        self.database_name = database
        self.table_name = catalog.TABLE_NAME
        iceberg = catalog.iceberg_table(location) if fmt == "iceberg" else None
        self.table_input = iceberg["TableInput"] if iceberg else catalog.table_input(
            fmt, location, list(table_names))
        self.database = glue.CfnDatabase(
            self, "Database", catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database, description=catalog.database_input(database)["Description"]))
        self.table = glue.CfnTable(
            self, "Table", catalog_id=Aws.ACCOUNT_ID, database_name=database,
            # Overridden below with the exact Glue TableInput (PascalCase, as CloudFormation
            # and the Glue API spell it); the typed struct would only re-spell it.
            table_input=glue.CfnTable.TableInputProperty(name=self.table_name))
        self.table.add_property_override("TableInput", self.table_input)
        if iceberg:
            self.table.add_property_override("OpenTableFormatInput",
                                             iceberg["OpenTableFormatInput"])
        self.table.node.add_dependency(self.database)
        # The state snapshots (ddbtrail snapshot, the daily maintenance): a second table
        # under the lake's snapshots/ prefix, from the same row schema.
        self.snapshot_table_name = catalog.SNAPSHOT_TABLE_NAME
        self.snapshot_table_input = catalog.snapshot_table_input(location, list(table_names))
        self.snapshot_table = glue.CfnTable(
            self, "SnapshotTable", catalog_id=Aws.ACCOUNT_ID, database_name=database,
            table_input=glue.CfnTable.TableInputProperty(name=self.snapshot_table_name))
        self.snapshot_table.add_property_override("TableInput", self.snapshot_table_input)
        self.snapshot_table.node.add_dependency(self.database)
        self.database_arn = (f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                             f"database/{database}")
        self.table_arn = (f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                          f"table/{database}/{self.table_name}")
        self.snapshot_table_arn = (f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                                   f"table/{database}/{self.snapshot_table_name}")
        self.catalog_arn = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}:catalog"
