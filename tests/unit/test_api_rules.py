"""The library speaks arguments, the CLI speaks options: no command-line text or
UsageError below cli/, and no command module leans on another."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ddbtrail"
CLI = SRC / "cli"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# A whole command a message tells the user to run may carry its options.
COMMAND = re.compile(r"ddbtrail [a-z-]+( --?[a-z][a-z0-9-]*( [^-' ]+)?)*( ?$|')")
# A generator run as ``python -m ddbtrail.catalog.glue --write glue/`` has its own argparse.
OWN_ARGPARSE = {SRC / "catalog" / "glue.py"}
# The AWS CLI's own options, in the command a message tells the user to run.
AWS_CLI = {"--table-name", "--stream-specification"}


def library_files() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if CLI not in p.parents]


def option_texts(path: Path, root: Path = SRC) -> list[str]:
    """``--option`` spellings in the string literals (docstrings included) of ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"{path.relative_to(root)}:{node.lineno}: {m}"
                      for m in OPTION.findall(COMMAND.sub("", node.value))]
    return found


def test_no_option_text_outside_cli() -> None:
    found = [t for p in library_files() if p not in OWN_ARGPARSE for t in option_texts(p)
             if t.rsplit(" ", 1)[1] not in AWS_CLI]
    assert found == []


def test_no_usage_error_outside_cli() -> None:
    found = [f"{p.relative_to(SRC)}:{n}" for p in library_files()
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"\bUsageError\b", line)]
    assert found == []


def command_modules() -> dict[str, Path]:
    return {f"ddbtrail.cli.{p.stem}": p for p in sorted(CLI.glob("*.py"))
            if not p.name.startswith("_")}


def test_no_command_module_imports_another() -> None:
    commands = command_modules()
    found = []
    for name, path in commands.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            found += [f"{name} imports {t}" for t in targets if t in commands and t != name]
    assert found == []


def test_the_guards_see_what_they_forbid(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text('def f():\n    """Use --lake."""\n    raise E("give --key Id=1")\n'
                   '    raise E("run \'ddbtrail backfill --table t\' first")\n', encoding="utf-8")
    found = option_texts(bad, tmp_path)
    assert sorted(t.rsplit(" ", 1)[1] for t in found) == ["--key", "--lake"]
    assert "ddbtrail.cli.who" in command_modules()
    assert "ddbtrail.cli._errors" not in command_modules()


def test_lake_formats_are_written_once() -> None:
    from ddbtrail.catalog import glue
    from ddbtrail.cli._app import LakeFormat
    from ddbtrail.core.formats import LAKE_FORMATS
    from ddbtrail.cost import FORMATS as COST_FORMATS
    from ddbtrail.delivery.local import FORMATS as DELIVERY_FORMATS

    assert tuple(LakeFormat) == LAKE_FORMATS
    assert DELIVERY_FORMATS is COST_FORMATS is glue.LAKE_FORMATS is LAKE_FORMATS


def test_core_reaches_no_aws() -> None:
    # Core is pure: reading a key from Secrets Manager lives in capture/redaction_key.py.
    found = []
    for path in sorted((SRC / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in
                      ("boto3", "botocore")]
    assert found == []
