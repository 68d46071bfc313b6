"""How the command line reports failures: errors the user can fix as one line on stderr
(exit code 2), anything else as one line pointing at ``--debug`` (exit code 1); with
``--debug`` the traceback is shown as well."""

from __future__ import annotations

import argparse
import sys
import traceback

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """An option or input the user can correct; the message says which and how."""


def user_fixable(error: BaseException) -> bool:
    """Bad inputs, options, files and checkpoints: every such error of this package is a
    ``ValueError`` (``StructureError``, ``CheckpointError``, ...) or an ``OSError``
    (missing file, permission denied, disk full)."""
    return isinstance(error, (ValueError, OSError))


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="on an error, also show the full traceback")


def run_command(args: argparse.Namespace) -> int:
    """Run the chosen command; turn an exception into one line on stderr and an exit code."""
    command = f"crysgnn-dgl {getattr(args, 'command', '')}".strip()
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the one place where every failure is reported
        if getattr(args, "debug", False):
            traceback.print_exc()
        if user_fixable(error):
            print(f"{command}: error: {one_line(error)}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(
            f"{command}: internal error ({type(error).__name__}: {one_line(error)}); "
            "rerun with --debug for the traceback and report it",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR
