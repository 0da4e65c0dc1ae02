"""Record schemas: every table is built through its named, typed schema."""

from __future__ import annotations

import pytest

from sgxlab.errors import ConfigError
from sgxlab.hw.platform import Platform
from sgxlab.sim.schema import LAUNCH_RECORDS, MSR_COUNTS, POLICY_MATRIX, Schema


@pytest.mark.parametrize("schema", [LAUNCH_RECORDS, MSR_COUNTS, POLICY_MATRIX], ids=lambda s: s.name)
def test_empty_frames_have_the_columns_and_dtypes(schema: Schema):
    df = schema.frame([])
    assert tuple(df.columns) == schema.names
    assert [str(t) for t in df.dtypes] == [c.dtype if c.dtype != "string" else "string" for c in schema.columns]
    assert len(schema.describe()) == len(schema.names)


def test_msr_counts_through_the_schema():
    p = Platform(2, "flexible")
    p.cpu(1).wrmsr(0x8C, 5)
    df = MSR_COUNTS.frame(p.msr_counts())
    assert df.loc[(df.cpu == 1) & (df.msr == 0x8C), "wrmsr"].item() == 1
    assert str(df.dtypes["name"]) == "string"


def test_missing_and_extra_columns_are_named():
    rec = {"cpu": 0, "msr": 0x8C, "name": "x", "rdmsr": 0}
    with pytest.raises(ConfigError, match="wrmsr"):
        MSR_COUNTS.frame([rec])
    with pytest.raises(ConfigError, match="bogus"):
        MSR_COUNTS.frame([{**rec, "wrmsr": 0, "bogus": 1}])
    with pytest.raises(ConfigError, match="unknown"):
        MSR_COUNTS.column("nope")
