"""MSR-update designs on the emulator: counts, staleness after S3, retries, subclassing."""

from __future__ import annotations

import pytest

from sgxlab.errors import ConfigError
from sgxlab.host.designs import (
    DESIGNS,
    AlwaysWrite,
    Design,
    EagerLoad,
    PerCpuCache,
    PerCpuCacheRetry,
    ReadCompare,
    design_class,
)
from sgxlab.host.samples import signed_enclave
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, MSR_IA32_SGXLEPUBKEYHASH, SgxError
from sgxlab.hw.platform import Platform


@pytest.fixture(scope="module")
def enclaves():
    return [signed_enclave(i) for i in range(3)]


def _launch(design, cpu, e):
    return design.einit(cpu, e.mrsigner.words, e.sigstruct_bytes, e.fresh())


def test_always_write_writes_four_every_time(enclaves):
    p = Platform(2)
    d = AlwaysWrite(p)
    for e in enclaves * 2:
        out = _launch(d, p.cpu(0), e)
        assert out.result.ok and (out.wrmsr, out.rdmsr, out.einits) == (4, 0, 1)


def test_read_compare_reads_four_and_writes_only_changes(enclaves):
    p = Platform(2)
    d = ReadCompare(p)
    a, b, _ = enclaves
    first = _launch(d, p.cpu(0), a)
    assert first.result.ok and first.rdmsr == 4 and first.wrmsr == 4
    again = _launch(d, p.cpu(0), a)
    assert again.result.ok and (again.rdmsr, again.wrmsr) == (4, 0)
    p.s3_resume()
    after = _launch(d, p.cpu(0), a)
    assert after.result.ok and after.wrmsr == 4, "read-compare sees the reset and rewrites"


def test_percpu_cache_goes_stale_after_s3_and_keeps_failing(enclaves):
    p = Platform(2)
    d = PerCpuCache(p)
    a, b, _ = enclaves
    assert _launch(d, p.cpu(1), a).wrmsr == 4
    hit = _launch(d, p.cpu(1), a)
    assert hit.result.ok and (hit.rdmsr, hit.wrmsr) == (0, 0)
    p.s3_resume()
    stale = _launch(d, p.cpu(1), a)
    assert stale.result.code == SgxError.SGX_INVALID_EINITTOKEN
    assert stale.result.check == "tokenless-mrsigner"
    assert "CPU 1's IA32_SGXLEPUBKEYHASH acb77012" in stale.result.reason
    assert _launch(d, p.cpu(1), a).result.code == SgxError.SGX_INVALID_EINITTOKEN, "the cache never learns"
    assert _launch(d, p.cpu(0), a).result.ok, "CPU 0 had no stale entry"
    assert _launch(d, p.cpu(1), b).result.ok, "a different signer rewrites the words"


def test_percpu_cache_retry_recovers(enclaves):
    p = Platform(1)
    d = PerCpuCacheRetry(p)
    a = enclaves[0]
    _launch(d, p.cpu(0), a)
    p.s3_resume()
    out = _launch(d, p.cpu(0), a)
    assert out.result.ok and (out.retries, out.einits, out.wrmsr) == (1, 2, 4)
    assert _launch(d, p.cpu(0), a).retries == 0


def test_eager_load_writes_on_schedule_in_only(enclaves):
    p = Platform(1)
    d = EagerLoad(p)
    assert not d.traps_einit and d.loads_on_schedule
    before = p.counts()["wrmsr_total"]
    d.vcpu_load(p.cpu(0), enclaves[0].mrsigner.words)
    assert p.counts()["wrmsr_total"] - before == 4
    assert p.cpu(0).lehash == enclaves[0].mrsigner


def test_lock_variants_and_registry():
    assert list(DESIGNS) == ["eager-load", "percpu-cache", "percpu-cache-retry", "read-compare", "always-write"]
    assert PerCpuCache.lock == "global"
    assert PerCpuCache(Platform(1), lock="percpu").lock == "percpu"
    assert design_class("percpu-cache:percpu").lock == "percpu"
    assert design_class("percpu-cache:percpu").name == "percpu-cache"
    assert design_class(ReadCompare) is ReadCompare
    with pytest.raises(ConfigError, match="unknown design"):
        design_class("nope")
    with pytest.raises(ConfigError):
        PerCpuCache(Platform(1), lock="spin")


def test_a_reader_can_add_a_design_in_a_few_lines(enclaves):
    class WriteTwice(Design):
        name = "write-twice"

        def update_lepubkeyhash(self, cpu, words):
            for _ in range(2):
                for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, words):
                    cpu.wrmsr(msr, w)

    p = Platform(1)
    out = _launch(WriteTwice(p), p.cpu(0), enclaves[0])
    assert out.result.ok and out.wrmsr == 8


def test_a_design_that_skips_the_write_fails_in_einit(enclaves):
    class Lazy(Design):
        name = "lazy"

        def update_lepubkeyhash(self, cpu, words):
            pass

    p = Platform(1)
    out = _launch(Lazy(p), p.cpu(0), enclaves[0])
    assert out.result.code == SgxError.SGX_INVALID_EINITTOKEN
    assert p.cpu(0).lehash == INTEL_LEPUBKEYHASH


def test_fast_hash_totals_agree_with_per_msr_counters(enclaves):
    p = Platform(2)
    d = ReadCompare(p)
    for i, e in enumerate(enclaves * 3):
        _launch(d, p.cpu(i % 2), e)
    p.s3_resume()
    _launch(AlwaysWrite(p), p.cpu(0), enclaves[0])
    for c in p.cpus:
        assert c.hash_rd == sum(c.rdmsr_count[m] for m in MSR_IA32_SGXLEPUBKEYHASH)
        assert c.hash_wr == sum(c.wrmsr_count[m] for m in MSR_IA32_SGXLEPUBKEYHASH)
    p.reset_counters()
    assert all(c.hash_rd == c.hash_wr == 0 for c in p.cpus)


def test_lock_variants_are_made_once_and_recognised():
    from sgxlab.host.designs import design_label

    v = PerCpuCache.with_lock("percpu")
    assert PerCpuCache.with_lock("percpu") is v and design_class("percpu-cache:percpu") is v
    assert v.lock_variant_of is PerCpuCache and PerCpuCacheRetry.with_lock("percpu").lock_variant_of is PerCpuCacheRetry
    assert design_label(v) == "percpu-cache:percpu"
    assert design_label(PerCpuCache.with_lock("global")) == "percpu-cache"
    assert design_label(ReadCompare) == "read-compare"
