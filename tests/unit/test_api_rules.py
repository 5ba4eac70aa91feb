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
# A whole command a message tells the user to run may carry its options: ddbtrail's, or the
# AWS CLI's (``aws SERVICE COMMAND --option``).
COMMAND = re.compile(
    r"(ddbtrail|aws [a-z0-9-]+) [a-z-]+( --?[a-z][a-z0-9-]*( [^-' ]+)?)*( ?$|'|`|:)")
# Modules run as scripts parse their own arguments: ``python -m ddbtrail.catalog.glue --write
# glue/`` and ``python -m ddbtrail.query.trino_local serve --port N`` (which also starts
# Trino's launcher with its options).
OWN_ARGPARSE = {SRC / "catalog" / "glue.py", SRC / "query" / "trino_local.py"}
# The AWS CLI's own options, in the command a message tells the user to run.
AWS_CLI = {"--table-name", "--stream-specification"}


def library_files() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if CLI not in p.parents]


def _texts(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal (docstrings included); an f-string whole, each value as X."""
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.append((node.lineno, "".join(
                v.value if isinstance(v, ast.Constant) else "X" for v in node.values)))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in parts):
            out.append((node.lineno, node.value))
    return out


def option_texts(path: Path, root: Path = SRC) -> list[str]:
    """``--option`` spellings in the string literals of ``path``."""
    return [f"{path.relative_to(root)}:{line}: {m}"
            for line, text in _texts(ast.parse(path.read_text(encoding="utf-8")))
            for m in OPTION.findall(COMMAND.sub("", text))]


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
