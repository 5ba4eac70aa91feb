"""Every error ddbtrail raises on purpose. The CLI turns each into one line on stderr."""

from __future__ import annotations


class DdbtrailError(Exception):
    """Root of every error ddbtrail raises on purpose."""

    exit_code = 1


class InvalidArgument(DdbtrailError):
    """An argument is wrong; ``param`` names it (``key``, ``at``), ``value`` is what was given.

    ``part`` names the piece at fault when the argument has several (a key attribute,
    a query parameter). The message names the argument, never a command-line option:
    only the CLI (cli/_errors.py) turns ``param`` into its option. ``value`` None means
    "not given" or "not worth echoing".
    """

    exit_code = 2

    def __init__(self, param: str, value: object, reason: str, *,
                 part: str | None = None) -> None:
        self.param = param
        self.value = value
        self.reason = reason
        self.part = part
        super().__init__(f"{param}{self.detail()}")

    def detail(self) -> str:
        """What follows the argument's name in the message: part, value and reason."""
        return f"{' ' + self.part if self.part else ''}{shown_value(self.value)}: {self.reason}"


def shown_value(value: object) -> str:
    """`` 'text'`` for a string, `` 12`` for a number, nothing for None: how an
    InvalidArgument's message shows the value given."""
    if value is None:
        return ""
    return f" {value!r}" if isinstance(value, str) else f" {value}"


class MalformedRecord(DdbtrailError):
    """A stream record cannot become a row; the message names the record."""

    def __init__(self, event_id: str | None, reason: str) -> None:
        self.event_id = event_id
        self.reason = reason
        super().__init__(f"record {event_id or '<no eventID>'}: {reason}")


class InvalidValue(DdbtrailError):
    """A DynamoDB attribute value is not valid for its type tag; the message names its path."""


class MalformedEvent(DdbtrailError):
    """An event as a whole is not a DynamoDB Streams event (no Records list, bad JSON)."""


class DeliveryFailed(DdbtrailError):
    """Rows could not be delivered after every retry."""


class RecordTooLarge(DeliveryFailed):
    """A Firehose record exceeds 1,000 KiB and there is no spill location for it."""


class ConfigError(DdbtrailError):
    """A setting (environment variable or option) is missing or invalid; the message names it."""

    exit_code = 2


class TableNotFound(DdbtrailError):
    """The DynamoDB table does not exist."""


class StreamNotEnabled(DdbtrailError):
    """The DynamoDB table has no stream."""


class LakeError(DdbtrailError):
    """The lake cannot be read or written."""


class QueryError(DdbtrailError):
    """A saved query is unknown, malformed, misses a parameter, or failed to run."""


class QueryUsageError(QueryError):
    """A call names an unknown query, or misses or misgives a parameter."""

    exit_code = 2


class TableNotInLake(LakeError):
    """The lake holds no changes of the table; the message names the tables it does hold."""


class PermanentAwsError(DdbtrailError):
    """An AWS error that retrying cannot fix (missing resource, access denied, invalid
    request); the message names the resource and the fix."""


class DataTrimmed(DdbtrailError):
    """Stream records were trimmed (older than 24 hours) before they could be read."""


class CatalogError(LakeError):
    """The lake's Iceberg catalog (catalog.db) cannot be used; the message names the file."""


class CatalogLocked(CatalogError):
    """Another process held the Iceberg catalog locked for longer than the bounded wait."""


class CatalogCorrupt(CatalogError):
    """The Iceberg catalog is not a readable SQLite database (random bytes, truncated)."""


class NotADdbtrailCatalog(CatalogError):
    """The catalog file is empty or a foreign SQLite database, not a ddbtrail catalog."""


class IcebergMetadataError(LakeError):
    """A metadata file the Iceberg table needs (metadata.json, manifest list, manifest) is
    missing or unreadable; the message names it."""


class DataFileMissing(LakeError):
    """A data file the table's current snapshot references is missing; the message names it."""


class OutsideLakeRoot(LakeError):
    """An operation would write or delete a file outside the lake's root; the message names
    the file and the root."""


class LakeMoved(LakeError):
    """The lake's Iceberg table is registered at another location (the lake was copied or
    moved); the message names both and how to register it again."""


class PartitionTooLarge(LakeError):
    """A partition holds more bytes than one compaction may read into memory; the message
    names it, its size and the limit."""


class CompactionFailed(LakeError):
    """Compacting a partition failed; its old files are kept. The message names it and why."""
