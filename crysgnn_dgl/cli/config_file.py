"""``--config FILE`` of the commands: option values from a TOML file, and the resolved
options written back as TOML beside a run's results (loadable with ``--config``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: namespace entries that are not options of a command
_NOT_OPTIONS = {"config", "command", "debug", "_run"}


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not a valid TOML file: {error}") from None


def apply_config(
    args: argparse.Namespace, add_arguments: Callable[[argparse.ArgumentParser], None]
) -> argparse.Namespace:
    """Fill every option left at its default with the value of ``args.config``.

    Keys are the long option names with ``_`` (``batch_size = 64``); options given on
    the command line win. A list becomes a comma-separated value for options that parse
    one (``kd_weights = [1, 10]``) and stays a list for options taking several values.
    ``add_arguments`` is the command's own, which gives the options and their defaults.
    """
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    actions = {action.dest: action for action in parser._actions}
    values = _read_toml(args.config)
    unknown = sorted(set(values) - set(actions) - {"config"})
    if unknown:
        raise ValueError(f"{args.config}: unknown option(s) {unknown}; use the long option names with '_'")
    for key, value in values.items():
        action = actions.get(key)
        if action is None:
            continue
        several = action.nargs in (argparse.ZERO_OR_MORE, argparse.ONE_OR_MORE)
        current = getattr(args, key)
        if current != action.default and not (several and current == []):  # given on the command line
            continue
        if isinstance(value, list) and not several:
            value = ",".join(map(str, value))
        convert = action.type
        if callable(convert):
            value = [convert(v) for v in value] if several else convert(value) if isinstance(value, str) else value
        setattr(args, key, value)
    return args


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_resolved_config(args: argparse.Namespace, path: Path) -> Path:
    """Write the options of ``args`` (unset ones left out) as TOML to ``path``, so that
    ``--config path`` repeats the run."""
    lines = ["# resolved options of this run; repeat it with --config <this file>"]
    for key, value in sorted(vars(args).items()):
        if key in _NOT_OPTIONS or value is None or callable(value):
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
