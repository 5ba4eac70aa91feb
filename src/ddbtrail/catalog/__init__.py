"""Catalog: the Glue table from the row schema, schema inference and typed BI views."""

# Submodules: ``from ddbtrail.catalog import glue``; nothing heavy is imported here.
__all__ = ["glue", "schema_infer", "views"]
