"""A CloudTrail log location (local folder or ``s3://bucket/prefix``), read as CloudTrail
writes it::

    <root>/[...]/AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/*.json.gz

each file ``{"Records": [...]}``. The root may be the bucket, a prefix above ``AWSLogs``,
or any folder inside that layout. Digest and Insight folders are skipped. Day folders
outside the days asked for are never listed, so reading a day of a large trail opens
that day's files only. Parsing is ``ddbtrail.core.cloudtrail``'s.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ddbtrail.core import cloudtrail
from ddbtrail.core.codec import parse_plain
from ddbtrail.core.exceptions import InvalidValue, LakeError
from ddbtrail.lake.files import Lake

if TYPE_CHECKING:
    import pyarrow.fs as pafs

_ACCOUNT: Final = re.compile(r"\d{12}\Z")
_DIGITS: Final = {4: re.compile(r"\d{4}\Z"), 2: re.compile(r"\d{2}\Z")}
# Folders above CloudTrail/ that are walked into while looking for the layout.
_MAX_DEPTH: Final = 8


@dataclass
class TrailRead:
    """What one read found: the write events, the files read, and one line per problem."""

    events: list[cloudtrail.WriteEvent] = field(default_factory=list)
    files: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrailLogs:
    """CloudTrail log files under a root. Build with ``TrailLogs.open``."""

    location: Lake  # the same local/S3 plumbing as the lake

    @classmethod
    def open(cls, uri: str, *, endpoint_url: str | None = None,
             region: str | None = None, profile: str | None = None) -> TrailLogs:
        """Resolve a folder or ``s3://`` URI. Does not touch storage."""
        return cls(Lake.open(uri, endpoint_url=endpoint_url, region=region, profile=profile))

    @property
    def uri(self) -> str:
        return self.location.uri

    def _list(self, path: str) -> list[pafs.FileInfo]:
        import pyarrow.fs as pafs

        return list(self.location.fs.get_file_info(pafs.FileSelector(path,
                                                                     allow_not_found=True)))

    def log_files(self, days: Iterable[str] | None = None) -> list[str]:
        """Paths of the log files, in path order; only ``days`` (YYYY-MM-DD) when given.

        Raises LakeError when the root does not exist or cannot be listed.
        """
        import pyarrow.fs as pafs

        wanted = set(days) if days is not None else None
        try:
            info = self.location.fs.get_file_info(self.location.root)
            if info.type == pafs.FileType.NotFound:
                raise LakeError(f"CloudTrail logs {self.uri}: no such folder or bucket prefix "
                                "(check `cloudtrail`)")
            parts = self.location.root.split("/")
            found = sorted(self._walk(self.location.root, parts, wanted, 0))
        except OSError as exc:
            raise LakeError(f"CloudTrail logs {self.uri}: cannot be listed ({exc})") from exc
        return found

    def _walk(self, path: str, parts: list[str], wanted: set[str] | None,
              depth: int) -> Iterator[str]:
        """Descend towards ``.../CloudTrail/<region>/<yyyy>/<mm>/<dd>/`` from any start."""
        # Where does ``path`` sit in the layout? Find "CloudTrail" below an account.
        for i in range(len(parts) - 1, 0, -1):
            if parts[i] == "CloudTrail" and _ACCOUNT.match(parts[i - 1]):
                yield from self._below(path, parts[i + 1:], wanted)
                return
        if depth >= _MAX_DEPTH:
            return
        import pyarrow.fs as pafs

        for child in self._list(path):
            if child.type != pafs.FileType.Directory:
                continue
            name = child.base_name
            if name.startswith("CloudTrail-") or name.startswith("."):
                continue  # CloudTrail-Digest, CloudTrail-Insight
            yield from self._walk(child.path, [*parts, name], wanted, depth + 1)

    def _below(self, path: str, rest: list[str], wanted: set[str] | None) -> Iterator[str]:
        """Under CloudTrail/: rest holds the folders already descended (region, y, m, d)."""
        import pyarrow.fs as pafs

        if len(rest) == 4:
            for f in self._list(path):
                if f.type == pafs.FileType.File and f.base_name.endswith((".json.gz", ".json")):
                    yield f.path
            return
        for child in self._list(path):
            if child.type != pafs.FileType.Directory:
                continue
            name = child.base_name
            level = len(rest)  # 0 region, 1 year, 2 month, 3 day
            if level >= 1 and not _DIGITS[4 if level == 1 else 2].match(name):
                continue
            prefix = "-".join([*rest[1:], name])
            if wanted is not None and level >= 1 and not any(
                    d.startswith(prefix) for d in wanted):
                continue
            yield from self._below(child.path, [*rest, name], wanted)

    def documents(self, days: Iterable[str] | None = None,
                  problems: list[str] | None = None) -> Iterator[tuple[str, str, Any]]:
        """(file name, day folder yyyy/MM/dd, parsed document) per readable log file.

        A file that cannot be read or parsed goes to ``problems``; the rest still come.
        Numbers keep their exact text (``codec.JsonNumber``).
        """
        for path in self.log_files(days):
            name = path.rsplit("/", 1)[-1]
            day = "/".join(path.rsplit("/", 4)[1:4])
            try:
                with self.location.fs.open_input_stream(path, compression=None) as stream:
                    data = bytes(stream.read())
                if path.endswith(".gz"):
                    data = gzip.decompress(data)
                document = parse_plain(data.decode("utf-8"))
            except (OSError, EOFError, UnicodeDecodeError, InvalidValue) as exc:
                if problems is not None:
                    problems.append(f"{name}: cannot be read ({exc})")
                continue
            yield name, day, document

    def read(self, days: Iterable[str] | None = None) -> TrailRead:
        """Every DynamoDB write event in the files of ``days`` (all days when None).

        A file that cannot be read or parsed is one problem line; the rest still count.
        """
        out = TrailRead()
        for name, _, document in self.documents(days, out.problems):
            events, problems = cloudtrail.parse_log(document, where=name)
            out.events.extend(events)
            out.problems.extend(problems)
            out.files += 1
        return out
