"""A local Trino server over a lake folder: one pinned release, fetched once into a cache.

``install`` downloads the server core and the Hive and Iceberg plugins with the ordinary
Maven client (``mvn``, strict checksums), checks each archive's SHA-256 against the values
pinned here, and unpacks them into ``<cache>/<version>/server``. The cache is
``$DDBTRAIL_TRINO_CACHE`` or ``~/.cache/ddbtrail/trino``, outside the repository, and is
reused by every later run; a file lock lets parallel test workers share it.

``LocalTrino`` writes a single-node configuration (coordinator that also schedules work,
small heap, a free loopback port, data in a temporary folder) with two catalogs over the
local file system: ``hive`` and ``iceberg``, both on a file metastore. It starts the server
with the JDK ``java_home`` finds and stops it on ``stop`` (or leaving the ``with`` block).

Run by hand::

    python -m ddbtrail.query.trino_local install
    python -m ddbtrail.query.trino_local serve --port 8080
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ddbtrail.core.exceptions import QueryError

if TYPE_CHECKING:
    from collections.abc import Iterator

# Trino 476 is the newest release the package registry serves here; it needs Java 24+.
VERSION: Final = "476"
# SHA-256 of each archive of VERSION, checked after Maven's own checksum check.
ARTIFACTS: Final = {
    "trino-server-core": ("tar.gz",
                          "0f388f9967c177ae70a47c099082fc95387f0c3cb96d8000d1d41fc3a5223158"),
    "trino-hive": ("zip", "611bacdb07d9f3cf7b9d47f97ecc76fa2e7ff8bfe8a9728c3d06adc1bfb8662e"),
    "trino-iceberg": ("zip", "99edba5b491ed94d599aeb61e0794272d3569d8b563f3bb8569e8a49daa87b6c"),
}
PLUGINS: Final = {"trino-hive": "hive", "trino-iceberg": "iceberg"}
MIN_JAVA: Final = 24
JDK_CANDIDATES: Final = ("/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/java-25-openjdk-amd64",
                         "/usr/lib/jvm/temurin-24-jdk-amd64")
_DEPENDENCY_PLUGIN: Final = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy"
HIVE_CATALOG: Final = "hive"
ICEBERG_CATALOG: Final = "iceberg"


def cache_root() -> Path:
    """Where releases are kept: ``$DDBTRAIL_TRINO_CACHE`` or ``~/.cache/ddbtrail/trino``."""
    env = os.environ.get("DDBTRAIL_TRINO_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ddbtrail" / "trino"


def java_home() -> Path:
    """A JDK new enough for VERSION: ``$DDBTRAIL_TRINO_JAVA_HOME``, else the first of
    JDK_CANDIDATES present. Raises QueryError when none is."""
    env = os.environ.get("DDBTRAIL_TRINO_JAVA_HOME")
    for candidate in ([env] if env else JDK_CANDIDATES):
        if (Path(candidate) / "bin" / "java").is_file():
            return Path(candidate)
    raise QueryError(f"Trino {VERSION} needs Java {MIN_JAVA}+: set DDBTRAIL_TRINO_JAVA_HOME "
                     f"(looked in {', '.join(JDK_CANDIDATES)})")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(artifact: str, packaging: str, folder: Path) -> Path:
    target = folder / f"{artifact}-{VERSION}.{packaging}"
    if target.is_file():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise QueryError("fetching Trino needs Maven (mvn) on PATH")
    done = subprocess.run(
        [mvn, "-q", "-B", "-C", _DEPENDENCY_PLUGIN,
         f"-Dartifact=io.trino:{artifact}:{VERSION}:{packaging}",
         f"-DoutputDirectory={folder}"],
        capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0 or not target.is_file():
        last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise QueryError(f"mvn could not fetch io.trino:{artifact}:{VERSION}: {last[0]}")
    return target


def install(cache: Path | None = None) -> Path:
    """The unpacked server of VERSION with the Hive and Iceberg plugins, fetched and checked
    on first use. Raises QueryError on a failed download or a checksum mismatch."""
    base = (cache or cache_root()) / VERSION
    server = base / "server"
    if (server / ".complete").is_file():
        return server
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be unpacking
        if (server / ".complete").is_file():
            return server
        archives = base / "archives"
        archives.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=base, prefix="unpack-"))
        try:
            for artifact, (packaging, sha) in ARTIFACTS.items():
                path = _download(artifact, packaging, archives)
                got = _sha256(path)
                if got != sha:
                    path.unlink()
                    raise QueryError(f"{path.name}: SHA-256 {got} is not the pinned {sha}")
                if packaging == "tar.gz":
                    with tarfile.open(path) as tar:
                        tar.extractall(staging, filter="data")
                    (staging / f"{artifact}-{VERSION}").rename(staging / "server")
                else:
                    with zipfile.ZipFile(path) as zipped:
                        zipped.extractall(staging / "plugins")  # noqa: S202 - checksum pinned
            for artifact, name in PLUGINS.items():
                (staging / "plugins" / f"{artifact}-{VERSION}").rename(
                    staging / "server" / "plugin" / name)
            launcher = staging / "server" / "bin" / "linux-amd64" / "launcher"
            for path in (launcher, staging / "server" / "bin" / "launcher"):
                if path.exists():
                    path.chmod(0o755)
            shutil.rmtree(server, ignore_errors=True)
            (staging / "server").rename(server)
            (server / ".complete").write_text(VERSION, encoding="utf-8")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return server


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _properties(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


@dataclass
class LocalTrino:
    """A single-node Trino on 127.0.0.1 with ``hive`` and ``iceberg`` catalogs on a file
    metastore under ``work`` and the local file system at ``/`` (scheme ``local://``)."""

    work: Path
    heap: str = "1G"
    port: int = 0
    server: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def metastore(self) -> Path:
        """Folder of the file metastore (both catalogs)."""
        return self.work / "metastore"

    def _configure(self) -> Path:
        etc = self.work / "etc"
        (etc / "catalog").mkdir(parents=True, exist_ok=True)
        self.metastore.mkdir(parents=True, exist_ok=True)
        (etc / "node.properties").write_text(_properties({
            "node.environment": "ddbtrail", "node.id": "ddbtrail-local",
            "node.data-dir": str(self.work / "data"),
            # Listen on loopback only.
            "node.bind-ip": "127.0.0.1", "node.internal-address": "127.0.0.1"}),
            encoding="utf-8")
        (etc / "jvm.config").write_text("\n".join([
            "-server", f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djdk.attach.allowAttachSelf=true", "-Dfile.encoding=UTF-8",
            "-XX:+ExitOnOutOfMemoryError", "-Duser.timezone=UTC", ""]), encoding="utf-8")
        (etc / "config.properties").write_text(_properties({
            "coordinator": "true", "node-scheduler.include-coordinator": "true",
            "http-server.http.port": str(self.port),
            "discovery.uri": f"http://127.0.0.1:{self.port}",
            "query.max-memory": "512MB", "query.max-memory-per-node": "512MB",
            "task.concurrency": "2", "task.max-worker-threads": "4",
            "optimizer.join-reordering-strategy": "NONE",
            "catalog.management": "static"}), encoding="utf-8")
        (etc / "log.properties").write_text("io.trino=WARN\n", encoding="utf-8")
        local = {"fs.native-local.enabled": "true", "local.location": "/",
                 "hive.metastore.catalog.dir": f"local://{self.metastore}"}
        (etc / "catalog" / f"{HIVE_CATALOG}.properties").write_text(_properties({
            "connector.name": "hive", "hive.metastore": "file", **local,
            "hive.non-managed-table-writes-enabled": "true",
            "hive.partition-projection-enabled": "true",
            # Athena reads a projected partition with no folder as empty; Trino fails
            # unless told to skip it.
            "hive.ignore-absent-partitions": "true",
            "hive.max-partitions-per-writers": "1000",
            "hive.storage-format": "PARQUET"}), encoding="utf-8")
        (etc / "catalog" / f"{ICEBERG_CATALOG}.properties").write_text(_properties({
            "connector.name": "iceberg", **local,
            # The Iceberg connector's file metastore: the same metastore folder as hive.
            "iceberg.catalog.type": "testing_file_metastore",
            "iceberg.register-table-procedure.enabled": "true",
            # Hive tables (snapshots, cloudtrail_logs) read through the iceberg catalog.
            "iceberg.hive-catalog-name": HIVE_CATALOG,
            "iceberg.file-format": "PARQUET"}), encoding="utf-8")
        return etc

    def start(self, timeout: float = 180.0) -> LocalTrino:
        """Install if needed, start, and wait until the server answers queries. Raises
        QueryError (with the server log's tail) if it does not come up within ``timeout``."""
        self.server = self.server or install()
        self.port = self.port or free_port()
        etc = self._configure()
        java = java_home()
        env = {**os.environ, "JAVA_HOME": str(java),
               "PATH": f"{java / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        log = (self.work / "server.log").open("wb")
        self.process = subprocess.Popen(
            [str(self.server / "bin" / "launcher"), "run", f"--etc-dir={etc}",
             f"--data-dir={self.work / 'data'}"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.server)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._ready() and self._answers():
                return self
            time.sleep(0.5)
        tail = self.log_tail()
        self.stop()
        raise QueryError(f"Trino did not start on port {self.port}: {tail}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/v1/info", timeout=2) as response:
                return b'"starting":false' in response.read().replace(b" ", b"")
        except OSError:
            return False

    def _answers(self) -> bool:
        # /v1/info says ready before the node can run table scans ("No nodes available"):
        # ready once a scan of an empty Hive table succeeds.
        probe = self.work / "probe"
        probe.mkdir(exist_ok=True)
        statements = (
            f"CREATE SCHEMA IF NOT EXISTS {HIVE_CATALOG}.ddbtrail_probe",
            f"CREATE TABLE IF NOT EXISTS {HIVE_CATALOG}.ddbtrail_probe.probe (x integer) "
            f"WITH (format = 'PARQUET', external_location = 'local://{probe}')",
            f"SELECT count(*) FROM {HIVE_CATALOG}.ddbtrail_probe.probe")
        try:
            from trino import dbapi

            con = dbapi.connect(host="127.0.0.1", port=self.port,  # type: ignore[no-untyped-call]
                                user="ddbtrail")
            try:
                cursor = con.cursor()
                for sql in statements:
                    cursor.execute(sql)
                    rows = cursor.fetchall()
                return bool(rows == [[0]])
            finally:
                con.close()
        except Exception:  # noqa: BLE001 - not up yet, whatever the client says
            return False

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the server log, joined by ' | '."""
        path = self.work / "server.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:]) or "no log"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LocalTrino:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def running(work: Path | None = None, heap: str = "1G") -> Iterator[LocalTrino]:
    """A started LocalTrino in ``work`` (a temporary folder when None), stopped after."""
    with tempfile.TemporaryDirectory(prefix="ddbtrail-trino-") as tmp, \
            LocalTrino(work or Path(tmp), heap=heap) as trino:
        yield trino


def main(argv: list[str] | None = None) -> int:
    """``install`` prints the server folder; ``serve [--port N]`` runs until interrupted."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else "install"
    if command == "install":
        print(install())
        return 0
    if command == "serve":
        port = int(args[args.index("--port") + 1]) if "--port" in args else 0
        with tempfile.TemporaryDirectory(prefix="ddbtrail-trino-") as tmp, \
                LocalTrino(Path(tmp), port=port) as trino:
            print(f"Trino {VERSION} on 127.0.0.1:{trino.port} (catalogs {HIVE_CATALOG}, "
                  f"{ICEBERG_CATALOG}); Ctrl-C stops it", flush=True)
            try:
                assert trino.process is not None
                trino.process.wait()
            except KeyboardInterrupt:
                pass
        return 0
    print("usage: python -m ddbtrail.query.trino_local install|serve [--port N]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
