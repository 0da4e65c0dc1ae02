"""The claims table: every claim is attributed in its source and tested by something that exists."""

from __future__ import annotations

import importlib
import re
from datetime import date
from pathlib import Path

import pytest

from sgxlab.errors import ConfigError
from sgxlab.experiments.claims import CLAIMS, NOTEBOOKS, Claim, claim, claims_for, claims_html, claims_text
from sgxlab.experiments.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# How the seed's headers spell each 2017 author.
_SEED_NAMES = {"Andy Lutomirski": "Andy Lutomirski", "Kai Huang": "Huang, Kai"}


def _flat(text: str) -> str:
    return " ".join(text.split())


def _source(name: str) -> str:
    path = SHARED / "seed" / "lkml-2017-05-launch-control-thread.txt" if name == "seed" else SHARED / "reference" / name
    if not path.is_file():
        pytest.skip(f"{path} not found: the thread and reference notes live in ../shared beside the checkout")
    return _flat(path.read_text())


def test_ids_are_unique_and_ordered():
    ids = [c.id for c in CLAIMS]
    assert ids == sorted(set(ids))


@pytest.mark.parametrize("c", CLAIMS, ids=lambda c: c.id)
def test_claim_is_attributed_in_its_source(c: Claim):
    text = _source(c.source)
    assert _flat(c.anchor) in text, f"{c.id}: anchor {c.anchor!r} not in {c.source}"
    assert len(c.anchor.split()) <= 6, "anchors are short quotes"
    if c.source == "seed":
        assert _SEED_NAMES[c.author] in text
        y, m = int(c.date[:4]), int(c.date[5:7])
        if len(c.date) == 10:
            d = date.fromisoformat(c.date)
            assert f"{d:%B} {d.day}, {y}" in text or f"{m}/{d.day}/{y}" in text, f"{c.id}: {c.date} not in the seed"
        else:
            assert re.search(rf"\b{m}/\d+/{y}\b|\b{date(y, m, 1):%B} \d+, {y}\b", text)
        assert c.link.startswith("https://lore.kernel.org/")
    else:
        assert c.message_id, f"{c.id} has no Message-ID"
        assert c.message_id in text, f"{c.id}: Message-ID {c.message_id} not in {c.source}"
        assert c.message_id in c.link
        for part in c.author.split("(")[0].split(","):
            assert part.strip() in text, f"{c.id}: {part.strip()} not in {c.source}"


@pytest.mark.parametrize("c", CLAIMS, ids=lambda c: c.id)
def test_claim_notebook_and_test_exist(c: Claim):
    assert (ROOT / "notebooks" / f"{c.notebook}.py").is_file(), f"{c.id}: no notebooks/{c.notebook}.py"
    if re.fullmatch(r"\d\d\.\d+", c.test):
        ex = next((e for e in EXERCISES if e.id == c.test), None)
        assert ex is not None, f"{c.id}: no exercise {c.test}"
        assert ex.notebook == c.notebook, f"{c.id}: exercise {c.test} belongs to {ex.notebook}"
    else:
        module, _, name = c.test.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))


def test_every_notebook_is_real():
    for nb in NOTEBOOKS:
        assert (ROOT / "notebooks" / f"{nb}.py").is_file(), nb


def test_text_fits_72_columns_and_keeps_every_claim():
    text = claims_text()
    for line in text.splitlines():
        assert len(line) <= 72 or line.startswith("https://"), line
    for c in CLAIMS:
        assert c.id in text and c.link in text
    narrow = claims_text(width=50)
    assert all(len(x) <= 50 or x.startswith("https://") for x in narrow.splitlines())


def test_html_is_a_table_and_escaped():
    page = claims_html()
    assert page.startswith("<table") and page.count("<tr>") == len(CLAIMS) + 1
    assert "&lt;size&gt;" in page  # C09's option string is escaped
    assert claims_html((claim("C08"),)).count("<tr>") == 2


def test_lookups_and_errors_name_the_field():
    assert claim("C03").author == "Andy Lutomirski"
    assert {c.id for c in claims_for("05-host-policies-and-the-little-vm")} >= {"C06", "C07", "C08"}
    with pytest.raises(ConfigError) as e:
        claim("C99")
    assert e.value.option == "claim_id"
    with pytest.raises(ConfigError) as e:
        claims_for("99-nope")
    assert e.value.option == "notebook"
    with pytest.raises(ConfigError) as e:
        claims_text(width=10)
    assert e.value.option == "width"
    bad = dict(vars(claim("C01")))
    for field, value in (("date", "May 2017"), ("link", "https://example.org/x"), ("notebook", "nope")):
        with pytest.raises(ConfigError) as e:
            Claim(**{**bad, field: value})
        assert e.value.option == field
