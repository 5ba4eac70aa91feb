"""Query: the one DuckDB connection, the saved Athena queries, lookups, restore and the report."""

# Submodules: ``from ddbtrail.query import lookups``; DuckDB loads only when one is used.
__all__ = ["duck", "lookups", "report", "restore", "saved"]
