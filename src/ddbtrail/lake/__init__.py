"""The lake: where rows live (layout, files, atomic writes) and how they are compacted."""

from ddbtrail.lake.files import DataFile, Lake

__all__ = ["DataFile", "Lake"]
