"""The ``sgxlab`` command line: scripts, and how the kit is checked from outside.

Each subcommand lives in its own module under :mod:`sgxlab.cli` and exposes
``register(subparsers)``; it returns its exit status.

Exit status
-----------
Any :class:`~sgxlab.errors.SgxlabError` (and a missing or unreadable file)
becomes exit status 2 with one line on stderr, never a traceback; so does any
other :class:`OSError` or :class:`UnicodeDecodeError` that escapes a
subcommand. Ctrl-C exits 130. An instruction that *ran* exits 0 whatever its
SGX result.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from sgxlab.errors import SgxlabError
from sgxlab.files import read_user_bytes
from sgxlab.present.text import WIDTH, kv_table

COMMANDS = (
    "sigstruct",
    "measure",
    "einit",
    "guest",
    "policies",
    "policy-matrix",
    "run",
    "compare",
    "sweep",
    "plot",
    "designs",
    "workloads",
)
"""Subcommand modules, in the order ``sgxlab --help`` lists them."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"sgxlab: error: {message}\n")


def read_file(path: str | Path, what: str) -> bytes:
    """Read a whole regular file, or raise ConfigError naming the option and the path."""
    return read_user_bytes(path, what)


def print_json(obj: object) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def print_table(rows: Sequence[tuple[str, str]]) -> None:
    """Two aligned columns, for the human-readable (non ``--json``) output: at most
    72 columns, long values wrapped onto continuation lines, never cut."""
    print(kv_table(rows, WIDTH))


def build_parser() -> argparse.ArgumentParser:
    from sgxlab import __version__

    parser = _Parser(prog="sgxlab", description="SGX Launch Control emulator and the 2017 LKML debate, replayed.")
    parser.add_argument("--version", action="version", version=f"sgxlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        mod = importlib.import_module(f".{name.replace('-', '_')}", __name__)
        mod.register(sub)
    return parser


def _one_line(text: str) -> str:
    """``text`` on one line (an error message must not spill over several)."""
    return " ".join(str(text).splitlines())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return its exit status.

    0: it ran. 2: bad input, one line on stderr: a :class:`SgxlabError`, a
    file the system would not read or write (:class:`OSError`), or bytes that
    are not UTF-8 (:class:`UnicodeDecodeError`); never a traceback. 130:
    interrupted (Ctrl-C). argparse's own usage errors exit 2 as well (via
    ``SystemExit``, one line).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SgxlabError as e:
        print(f"sgxlab {args.command}: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"sgxlab {args.command}: {_one_line(where + (e.strerror or str(e)))}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as e:
        print(f"sgxlab {args.command}: {_one_line(f'input is not UTF-8 text: {e}')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sgxlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
