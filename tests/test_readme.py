"""The README's examples run and print what the README says they print."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from sgxlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.S | re.M)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def test_einit_in_20_lines_runs_and_prints_what_the_readme_says(capsys):
    section = _section("EINIT in 20 lines")
    (code,) = _blocks(section, "python")
    (output,) = _blocks(section, "text")
    statements = [ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(statements) <= 20, f"'EINIT in 20 lines' has {len(statements)} lines of code"
    exec(compile(code, "README.md: EINIT in 20 lines", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out
    assert printed == output
    first, second = printed.splitlines()
    assert first.startswith("SUCCESS (0): ") and "token-less launch" in first
    assert second.startswith("SGX_INVALID_EINITTOKEN (16): ") and "acb77012…" in second


def test_readme_command_line_lists_einit():
    section = _section("Command line")
    usage = _blocks(section, "")[0]
    assert "sgxlab einit --sigstruct F (--sgxs F | --mrenclave HEX) [--token F]" in usage
    assert "[--lehash HEX|intel] [--secs-attributes FLAGS[/XFRM]] [--json]" in usage


@pytest.mark.vectors
def test_readme_einit_transcript(vectors, capsys, monkeypatch):
    """The `$ sgxlab einit ...` transcript, run in the Fortanix vector folder."""
    transcript = next(b for b in _blocks(_section("Command line"), "") if b.startswith("$ sgxlab einit"))
    command, _, expected = transcript.partition("\n")
    monkeypatch.chdir(vectors / "fortanix-rust-sgx")
    assert main(shlex.split(command)[2:]) == 0
    assert capsys.readouterr().out == expected


def test_the_debate_in_numbers_table_is_what_compare_returns():
    section = _section("The debate in numbers")
    (code,) = _blocks(section, "python")
    (table,) = _blocks(section, "text")
    first, rest = code.split("\n", 1)
    scope: dict = {}
    exec(first, scope)  # import sgxlab
    scope["result"] = eval(rest, scope)  # the expression the README shows
    assert scope["result"].to_string(index=False) + "\n" == table
    # The prose's arithmetic: the WRMSRs the cache saves, priced in EINITs.
    df = scope["result"].set_index("design")
    saved = df.loc["always-write", "wrmsr"] - df.loc["percpu-cache", "wrmsr"]
    assert saved == 3784 and round(saved * 400 / 60_000) == 25
