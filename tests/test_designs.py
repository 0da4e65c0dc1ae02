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
    assert PerCpuCache.lock == "global", "Andy's 2017 proposal: 'probably just a mutex'"
    assert PerCpuCacheRetry.lock == "percpu", "v23/v35 sgx_einit: preempt_disable() only, no global lock"
    assert PerCpuCache.initial == PerCpuCacheRetry.initial == "zero", "the 2019 DEFINE_PER_CPU array"
    assert design_class("percpu-cache:percpu").lock == "percpu"
    assert design_class("percpu-cache:percpu").name == "percpu-cache"
    assert design_class(ReadCompare) is ReadCompare
    with pytest.raises(ConfigError, match="unknown design"):
        design_class("nope")
    with pytest.raises(TypeError):
        PerCpuCache(Platform(1), lock="percpu")  # type: ignore[call-arg]  # the dead keyword is gone


def test_variant_grammar_round_trips():
    from sgxlab.host.designs import design_label

    both = PerCpuCache.variant(lock="percpu", initial="intel")
    spellings = {
        "percpu-cache:percpu": PerCpuCache.variant(lock="percpu"),
        "percpu-cache:lock=percpu": PerCpuCache.variant(lock="percpu"),
        "percpu-cache:initial=intel": PerCpuCache.variant(initial="intel"),
        "percpu-cache:lock=percpu,initial=intel": both,
        "percpu-cache:initial=intel, percpu": both,
        "percpu-cache:global": PerCpuCache,
        "percpu-cache:lock=global,initial=zero": PerCpuCache,
        "percpu-cache-retry:global": PerCpuCacheRetry.variant(lock="global"),
        "percpu-cache-retry:percpu": PerCpuCacheRetry,
    }
    for text, cls in spellings.items():
        assert design_class(text) is cls, text
        assert design_class(design_label(cls)) is cls, text
    assert design_label(both) == "percpu-cache:percpu,initial=intel"
    assert design_label(PerCpuCache.variant(initial="intel")) == "percpu-cache:initial=intel"
    assert design_label(PerCpuCacheRetry.variant(lock="global")) == "percpu-cache-retry:global"
    assert both.variant(lock="global") is PerCpuCache.variant(initial="intel"), "options compose"
    assert both.variant_of is PerCpuCache and both.name == "percpu-cache" and both.initial == "intel"


@pytest.mark.parametrize(
    "text, match",
    [
        ("percpu-cache:spin", r"unknown option 'spin'.*lock=global\|percpu"),
        ("percpu-cache:intel", "write the initial value as initial=intel"),
        ("percpu-cache:initial=ones", r"initial='ones' is not one of zero, intel"),
        ("percpu-cache:lock=mutex", r"lock='mutex' is not one of global, percpu"),
        ("percpu-cache:percpu,lock=global", "option lock given twice"),
        ("percpu-cache:colour=red", "unknown option 'colour'"),
        ("percpu-cache:", "unknown option ''"),
        ("read-compare:percpu", "read-compare takes no options"),
    ],
)
def test_bad_variant_spellings_name_the_right_one(text, match):
    with pytest.raises(ConfigError, match=match) as e:
        design_class(text)
    assert "percpu-cache:lock=percpu,initial=intel" in str(e.value) or "takes no options" in str(e.value)


def test_variant_refuses_bad_values():
    with pytest.raises(ConfigError, match="lock='spin'"):
        PerCpuCache.with_lock("spin")
    with pytest.raises(ConfigError, match="initial='ones'"):
        PerCpuCache.variant(initial="ones")


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
    assert PerCpuCache.variant(lock="percpu", initial="zero") is v
    assert v.variant_of is PerCpuCache and PerCpuCacheRetry.with_lock("global").variant_of is PerCpuCacheRetry
    assert design_label(v) == "percpu-cache:percpu"
    assert PerCpuCache.with_lock("global") is PerCpuCache and design_label(PerCpuCache) == "percpu-cache"
    assert PerCpuCacheRetry.with_lock("percpu") is PerCpuCacheRetry
    assert design_label(ReadCompare) == "read-compare"


# --------------------------------------------------------------------------- the cache's initial value


def test_the_2019_cache_starts_at_zero_and_writes_every_word(enclaves):
    """v23's DEFINE_PER_CPU(u64 [4], sgx_lepubkeyhash_cache) has no initialiser."""
    p = Platform(2)
    zero, intel = PerCpuCache(p), PerCpuCache.variant(initial="intel")(p)
    assert zero.cache == [[0, 0, 0, 0]] * 2 and intel.cache == [list(INTEL_LEPUBKEYHASH.words)] * 2
    e = enclaves[0]
    assert _launch(zero, p.cpu(0), e).wrmsr == 4
    assert _launch(zero, p.cpu(0), e).wrmsr == 0, "then it hits"


def test_a_guest_with_intels_hash_and_a_cache_that_starts_at_intels_hash():
    """Firmware pre-wrote a third party's hash X. The cache that starts at
    Intel's value believes Intel's hash is loaded, skips the WRMSRs, and the
    guest (virtual hash Intel's) launches an X-signed enclave it should not
    be able to; the 2019 cache, starting at zero, writes Intel's words and
    EINIT refuses, as it would have on the guest's own hardware."""
    from sgxlab.hw.crypto import load_test_key
    from sgxlab.hw.platform import Firmware
    from sgxlab.kvm import Kvm, SgxGuestConfig

    x = load_test_key(5)
    e = signed_enclave(x, tag=b"third party")
    codes = {}
    for initial in ("intel", "zero"):
        platform = Platform(1, Firmware.flexible(x.mrsigner))
        assert platform.cpu(0).lehash == x.mrsigner
        kvm = Kvm(platform, design=PerCpuCache.variant(initial=initial))
        vm = kvm.create_vm(SgxGuestConfig(epc="64M"))
        vcpu = vm.vcpu(0)
        assert vcpu.lehash_words == INTEL_LEPUBKEYHASH.words
        vcpu.load(0)
        g = vcpu.einit(e.sigstruct_bytes, e.fresh())
        assert g.trapped
        codes[initial] = g.code
    assert codes == {"intel": 0, "zero": int(SgxError.SGX_INVALID_EINITTOKEN)}


# --------------------------------------------------------------------------- SGX_UNMASKED_EVENT


@pytest.mark.parametrize("cls", [AlwaysWrite, ReadCompare, PerCpuCache, PerCpuCacheRetry, EagerLoad])
def test_the_host_path_retries_an_interrupted_einit(cls, enclaves):
    """sgx_encl_init: on SGX_UNMASKED_EVENT update the MSRs and EINIT again."""
    p = Platform(1)
    d = cls(p)
    e = enclaves[1]
    p.cpu(0).inject_event()
    out = d.einit(p.cpu(0), e.mrsigner.words, e.sigstruct_bytes, e.fresh())
    assert out.result.ok and (out.einits, out.retries, out.unmasked_retries) == (2, 0, 1)
    per_try = {
        AlwaysWrite: (0, 8),
        ReadCompare: (8, 4),
        PerCpuCache: (0, 4),
        PerCpuCacheRetry: (0, 4),
        EagerLoad: (0, 8),
    }
    assert (out.rdmsr, out.wrmsr) == per_try[cls], "the update runs before every try"
    out = d.einit(p.cpu(0), e.mrsigner.words, e.sigstruct_bytes, e.fresh(), interrupts=7)
    assert out.result.ok and (out.einits, out.unmasked_retries) == (8, 7)


def test_interrupts_every_try_fail_after_1000(enclaves):
    from sgxlab.host.designs import EINIT_MAX_ATTEMPTS, SGX_EINIT_SLEEP_COUNT, SGX_EINIT_SPIN_COUNT
    from sgxlab.sim.trace import MAX_EINIT_ATTEMPTS

    assert EINIT_MAX_ATTEMPTS == SGX_EINIT_SPIN_COUNT * SGX_EINIT_SLEEP_COUNT == 1000 == MAX_EINIT_ATTEMPTS
    p = Platform(1)
    e = enclaves[0]
    out = AlwaysWrite(p).einit(p.cpu(0), e.mrsigner.words, e.sigstruct_bytes, e.fresh(), interrupts=5000)
    assert out.result.code == SgxError.SGX_UNMASKED_EVENT
    assert (out.einits, out.unmasked_retries, out.wrmsr) == (1000, 999, 4000)
    assert not p.cpu(0).pending_event


def test_the_guest_path_does_not_retry(enclaves):
    """KVM's sgx_virt_einit runs one EINIT; the guest sees SGX_UNMASKED_EVENT."""
    p = Platform(1)
    e = enclaves[0]
    d = AlwaysWrite(p)
    out = d.einit(p.cpu(0), e.mrsigner.words, e.sigstruct_bytes, e.fresh(), retry_unmasked=False, interrupts=1)
    assert out.result.code == SgxError.SGX_UNMASKED_EVENT and out.einits == 1 and out.wrmsr == 4


def test_the_stale_retry_and_the_interrupt_retry_are_told_apart(enclaves):
    p = Platform(1)
    d = PerCpuCacheRetry(p)
    a = enclaves[0]
    _launch(d, p.cpu(0), a)
    p.s3_resume()
    out = d.einit(p.cpu(0), a.mrsigner.words, a.sigstruct_bytes, a.fresh(), interrupts=2)
    assert out.result.ok and (out.einits, out.retries, out.unmasked_retries, out.wrmsr) == (4, 1, 2, 4)
