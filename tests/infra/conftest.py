"""Synthesize the CDK app through its real entry point, once per configuration per run.

``python infra/app.py`` (what ``cdk synth`` runs) goes in a subprocess with the context
in CDK_CONTEXT_JSON; its cloud assembly is shared by every xdist worker through a file
lock, so each configuration costs one synth however the tests are distributed.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK = "ddbtrail"


@dataclass(frozen=True)
class Synth:
    """A finished synth: exit code, stderr, and the cloud assembly folder."""

    returncode: int
    stderr: str
    outdir: Path

    @property
    def template(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.outdir / f"{STACK}.template.json").read_text(encoding="utf-8"))
        return data

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.template["Resources"].items() if r["Type"] == type_}

    def asset_dir(self, code: dict[str, Any]) -> Path:
        """The staged folder behind a Lambda ``Code`` property (``S3Key`` = <hash>.zip)."""
        return self.outdir / f"asset.{code['S3Key'].removesuffix('.zip')}"


def run_app(context: dict[str, str], outdir: Path) -> Synth:
    env = dict(os.environ, CDK_OUTDIR=str(outdir), CDK_CONTEXT_JSON=json.dumps(context),
               JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1")
    proc = subprocess.run([sys.executable, str(REPO / "infra" / "app.py")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    return Synth(proc.returncode, proc.stderr, outdir)


@pytest.fixture(scope="session")
def app_runner() -> Callable[[dict[str, str], Path], Synth]:
    """``run_app`` itself, for a synth that should not be shared (e.g. one that must fail)."""
    return run_app


@pytest.fixture(scope="session")
def synth_once(tmp_path_factory: pytest.TempPathFactory,
               worker_id: str) -> Callable[..., Synth]:
    """``synth_once(name, context, setup=None)``: the app synthesized with ``context``, shared
    by workers. ``setup(folder)``, run once under the lock before the synth, writes inputs
    into the configuration's folder (the parent of ``Synth.outdir``) and returns more context.
    """
    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent

    def synth(name: str, context: dict[str, str],
              setup: Callable[[Path], dict[str, str]] | None = None) -> Synth:
        folder = root / f"infra-synth-{name}"
        folder.mkdir(exist_ok=True)
        with (root / f"infra-synth-{name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            done = folder / "result.json"
            if not done.exists():
                extra = setup(folder) if setup else {}
                result = run_app({**context, **extra}, folder / "cdk.out")
                done.write_text(json.dumps({"returncode": result.returncode,
                                            "stderr": result.stderr}), encoding="utf-8")
            saved = json.loads(done.read_text(encoding="utf-8"))
        return Synth(saved["returncode"], saved["stderr"], folder / "cdk.out")

    return synth
