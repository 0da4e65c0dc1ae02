"""``sgxlab ARGV`` run in the test's own process, for the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sgxlab.cli import main


def sgxlab_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """Run ``sgxlab ARGV`` in-process; return (exit status, stdout, stderr), argparse's exits included."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse errors, --help
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err
