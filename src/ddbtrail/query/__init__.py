"""Query: the one DuckDB connection, the saved Athena queries, lookups, restore and the report."""
