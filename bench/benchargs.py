"""Command-line helpers the bench scripts share (no sgxlab import, so that
``bench/exact_ab.py`` can still import sgxlab from another checkout)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number of at least 1, else a usage error naming the value."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {n}")
    return n


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose description is the first paragraph of the script's docstring."""
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
