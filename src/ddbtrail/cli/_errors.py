"""The one place where errors become exit codes and one line on stderr.

2: a usage error, found from the command line alone (bad or missing option, bad value,
   unknown query or parameter, bad setting). 1: a runtime error, found while running
   (an unknown table in the lake, AWS, the lake, bad records). 130: interrupted.
"""

from __future__ import annotations

import re
from typing import Final

import typer
from typer import core as tcore

# Typer 0.2x carries its own copy of Click; its errors are the ones raised.
from typer._click import exceptions as cx

from ddbtrail.cli._app import app, err_console
from ddbtrail.core.exceptions import ConfigError, DdbtrailError, InvalidArgument

USAGE: Final = 2
RUNTIME: Final = 1
INTERRUPTED: Final = 130

# Typer's and pydantic-style prefixes that say nothing to a user.
_NOISE: Final = re.compile(r"^(Value error, |Invalid value: )")
_PYDANTIC: Final = re.compile(r"^Input should be ")


class UsageError(DdbtrailError):
    """A command-line option or its value is wrong (found by the CLI itself)."""

    exit_code = USAGE


# Library arguments whose option has another name; any other ``name_x`` is ``--name-x``.
_OPTION_OF: Final = {"settle_seconds": "--settle", "live_items": "--items",
                     "tolerance": "--tolerance", "boto3_session": "--profile",
                     "https": "--trino-https"}


def option_of(param: str) -> str:
    """The option that sets the library argument ``param`` (``key`` -> ``--key``)."""
    if param.startswith("-") or " " in param:  # already an option, or a phrase
        return param
    return _OPTION_OF.get(param, "--" + param.replace("_", "-"))


# Library messages name an argument in backquotes: "(set `lake` or DDBTRAIL_LAKE)".
_ARGUMENT: Final = re.compile(r"`([a-z][a-z0-9_]*)`")


def options_in(text: str) -> str:
    """``text`` with each backquoted argument name replaced by its option."""
    return _ARGUMENT.sub(lambda m: option_of(m.group(1)), text)


def argument_line(exc: InvalidArgument) -> str:
    """One line for a library argument error, naming its option and the value given."""
    return options_in(f"{option_of(exc.param)}{exc.detail()}")


def _say(text: str) -> None:
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)


def _option_name(param: object) -> str | None:
    if param is None:
        return None
    if isinstance(param, tcore.TyperOption):
        longs = [o for o in param.opts if o.startswith("--")]
        return (longs or param.opts)[0]
    return str(getattr(param, "human_readable_name", "") or "").upper() or None


def usage_line(exc: cx.UsageError) -> str:
    """One line for a Click/Typer usage error, naming the option once and where help is."""
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    if isinstance(exc, cx.MissingParameter):
        name = _option_name(exc.param)
        kind = "argument" if isinstance(exc.param, tcore.TyperArgument) else "option"
        return f"missing {kind} {name}{where}" if name else exc.format_message() + where
    if isinstance(exc, cx.BadParameter):
        name = _option_name(exc.param)
        message = _NOISE.sub("", str(exc.message)).rstrip(".")
        message = _PYDANTIC.sub("must be ", message).split(", unable to")[0]
        message = message.replace("'", "") if " is not one of " in message else message
        return f"{name}: {message}{where}" if name else message + where
    if isinstance(exc, cx.NoSuchOption):
        near = [p for p in exc.possibilities or () if p != "--help"]
        close = f"; did you mean {', '.join(near)}?" if near else ""
        return f"no such option {exc.option_name}{close}{where}"
    return exc.format_message().rstrip(".") + where


def run(argv: list[str] | None = None) -> int:
    """Run ``ddbtrail <argv>``; return its exit code. Never raises but SystemExit."""
    from botocore.exceptions import NoRegionError, ProfileNotFound

    from ddbtrail.cli._aws import NO_REGION

    try:
        rc = app(args=argv, prog_name="ddbtrail", standalone_mode=False)
    except cx.NoArgsIsHelpError as exc:
        if exc.ctx is not None:
            typer.echo(exc.ctx.get_help())
        return USAGE
    except cx.UsageError as exc:
        _say(f"error: {usage_line(exc)}")
        return USAGE
    except cx.ClickException as exc:  # e.g. a file option that cannot be opened
        _say(f"error: {exc.format_message()}")
        return USAGE
    except InvalidArgument as exc:
        _say(f"error: {argument_line(exc)}")
        return exc.exit_code
    except DdbtrailError as exc:
        _say(f"error: {options_in(str(exc))}")
        return exc.exit_code
    except ProfileNotFound as exc:
        _say(f"error: --profile {exc.kwargs.get('profile')}: no such profile in "
             "~/.aws/config or ~/.aws/credentials")
        return ConfigError.exit_code
    except NoRegionError:
        _say(f"error: {NO_REGION}")
        return ConfigError.exit_code
    except (KeyboardInterrupt, typer.Abort):
        _say("interrupted")
        return INTERRUPTED
    return rc if isinstance(rc, int) else 0
