"""The Lambda asset carries the codec's fast path (orjson) for the function's platform."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from infra import constants as C
from infra.constructs.capture import build_lambda_asset, lambda_pin, lambda_wheel, wheel_cache

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.infra


def host_architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "x86_64", "AMD64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[machine]


def test_an_asset_for_this_machine_imports_the_fast_path_from_itself(tmp_path: Path) -> None:
    """Built exactly as for Lambda (handler, package, manylinux wheel) but for the host's
    platform and Python, the asset alone (no site-packages) gives the codec orjson."""
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    asset = build_lambda_asset(C.CAPTURE_HANDLER_FILE, tmp_path / "asset",
                               architecture=host_architecture(), python=python)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from ddbtrail.core import codec; "
            "print(codec.FAST_JSON, codec.orjson.__file__)")
    proc = subprocess.run([sys.executable, "-I", "-c", code, str(asset)], capture_output=True,
                          text=True, check=False, env={"PATH": os.environ.get("PATH", "")})
    assert proc.returncode == 0, proc.stderr
    fast, where = proc.stdout.split()
    assert fast == "True"
    assert Path(where).is_relative_to(asset)


def test_the_capture_asset_writes_receipts_with_its_own_evidence_package(tmp_path: Path) -> None:
    """The capture writes receipts (RECEIPTS_BUCKET): ``ddbtrail.evidence`` is in the asset,
    not excluded with the CLI, and its receipts module loads from the asset alone."""
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    asset = build_lambda_asset(C.CAPTURE_HANDLER_FILE, tmp_path / "asset",
                               architecture=host_architecture(), python=python)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from ddbtrail.evidence import receipts; print(receipts.__file__)")
    proc = subprocess.run([sys.executable, "-I", "-c", code, str(asset)], capture_output=True,
                          text=True, check=False, env={"PATH": os.environ.get("PATH", "")})
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(asset / "ddbtrail" / "evidence")


def test_the_wheel_comes_from_the_cache_without_the_network(tmp_path: Path,
                                                           monkeypatch: Any) -> None:
    wheel = lambda_wheel("orjson", "arm64", C.LAMBDA_PYTHON)
    with zipfile.ZipFile(wheel) as archive:
        assert any(n.endswith("aarch64-linux-gnu.so") for n in archive.namelist())
    # A cached wheel is found again with pip unusable (as offline).
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    assert lambda_wheel("orjson", "arm64", C.LAMBDA_PYTHON) == wheel


def test_the_asset_bundles_the_orjson_the_tests_ran() -> None:
    """The Lambda lock and the dev lock pin the same orjson, so the asset runs tested code."""
    dev = (REPO / "requirements" / "dev.txt").read_text(encoding="utf-8")
    assert f"\norjson=={lambda_pin('orjson').version} " in dev


def test_a_cached_wheel_whose_hash_is_not_locked_is_never_used(tmp_path: Path,
                                                               monkeypatch: Any) -> None:
    """A wheel swapped in the cache (same name, other bytes) is refused; with pip unusable
    (as offline) the build says so instead of bundling it."""
    monkeypatch.setenv("LAMBDA_WHEEL_CACHE", str(tmp_path))
    pin = lambda_pin("orjson")
    forged = tmp_path / f"orjson-{pin.version}-cp312-cp312-manylinux_2_17_aarch64.whl"
    forged.write_bytes(b"not the locked wheel")
    assert wheel_cache() == tmp_path
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(Exception, match="locked hash"):
        lambda_wheel("orjson", "arm64", C.LAMBDA_PYTHON)
