"""Catalog: the Glue table from the row schema, schema inference and typed BI views."""
