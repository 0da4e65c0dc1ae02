"""Trace validation is remembered, and cannot go stale."""

from __future__ import annotations

import numpy as np
import pytest

from sgxlab.errors import ConfigError
from sgxlab.sim.trace import EXIT, LAUNCH, S3, SCHED, Trace, VmSpec


def _trace() -> Trace:
    rows = [(0, SCHED, 1, 0, 0, -1), (10, LAUNCH, 1, 0, 0, 0), (20, LAUNCH, 0, -1, -1, 1)]
    return Trace.from_rows(rows, ncpus=2, nsigners=2, vms=(VmSpec(1, True, -1),))


def test_a_validated_trace_is_frozen():
    tr = _trace()
    tr.validate()
    with pytest.raises(ValueError):
        tr.cpu[1] = 0  # read-only after validation
    tr.validate()  # remembered: no work


def test_replacing_a_column_makes_it_unchecked_again():
    tr = _trace()
    tr.validate()
    cpu = tr.cpu.copy()
    cpu[1] = 0  # the guest launch moves to a CPU its vCPU is not on
    tr.cpu = cpu
    with pytest.raises(ConfigError, match="row 1"):
        tr.validate()
    assert tr.cpu.flags.writeable


def test_changing_static_facts_revalidates():
    tr = _trace()
    tr.validate()
    tr.vms = (VmSpec(1, False, 1),)  # no lewr, may only launch signer 1
    with pytest.raises(ConfigError):
        tr.validate()
    assert np.all(tr.kind >= 0)


# --------------------------------------------------------------------------- a vCPU acts only while current


def _two_vms() -> tuple[VmSpec, ...]:
    return (VmSpec(2, True, -1), VmSpec(1, False, 1))


@pytest.mark.parametrize("kind, signer", [(LAUNCH, 1), (EXIT, -1)])
def test_a_displaced_vcpu_may_not_act(kind, signer):
    rows = [
        (0, SCHED, 0, 0, 0, -1),
        (1, SCHED, 1, 0, 1, -1),
        (2, LAUNCH, 0, 0, 0, 1),  # fine: current on CPU 0
        (3, SCHED, 0, 1, 0, -1),  # VM 1's vCPU takes CPU 0
        (4, kind, 0, 0, 0, signer),  # VM 0's vCPU 0 is displaced
    ]
    tr = Trace.from_rows(rows, ncpus=2, nsigners=2, vms=_two_vms())
    assert not tr._rows_ok()
    with pytest.raises(ConfigError, match=r"^trace row 4=\(0, 0, 0\): a vCPU acts only while it is current") as e:
        tr.validate()
    assert e.value.row == 4 and "vCPU 0 of VM 1 was scheduled in on CPU 0 since" in str(e.value)
    # Scheduled in again first, it may act.
    ok = Trace.from_rows([*rows[:4], (4, SCHED, 0, 0, 0, -1), rows[4]], ncpus=2, nsigners=2, vms=_two_vms())
    ok.validate()


def test_a_migrated_vcpu_acts_only_on_its_new_cpu():
    rows = [(0, SCHED, 0, 0, 0, -1), (1, SCHED, 1, 0, 0, -1), (2, EXIT, 0, 0, 0, -1)]
    tr = Trace.from_rows(rows, ncpus=2, nsigners=2, vms=_two_vms())
    with pytest.raises(ConfigError, match="row 2.*the CPU it was scheduled in on"):
        tr.validate()
    again = Trace.from_rows(
        [*rows[:2], (2, SCHED, 1, 0, 0, -1), (3, EXIT, 1, 0, 0, -1)], ncpus=2, nsigners=2, vms=_two_vms()
    )
    again.validate()  # a second SCHED onto the same CPU keeps it current


def _schedule_rows(rng: np.random.Generator) -> Trace:
    """SCHEDs and acts on 3 CPUs by 3 vCPUs; an act is by a random vCPU on its
    last CPU (sometimes displaced) or, rarely, on any CPU."""
    vms = _two_vms()
    vcpus = [(0, 0), (0, 1), (1, 0)]
    where: dict[tuple[int, int], int] = {}
    rows = []
    for t in range(int(rng.integers(1, 14))):
        who = vcpus[int(rng.integers(3))]
        if rng.random() < 0.4 or who not in where:
            c = int(rng.integers(3))
            where[who] = c
            rows.append((t, SCHED, c, *who, -1))
        else:
            c = where[who] if rng.random() < 0.95 else int(rng.integers(3))
            if rng.random() < 0.5:
                rows.append((t, EXIT, c, *who, -1))
            else:
                rows.append((t, LAUNCH, c, *who, 1))
    return Trace.from_rows(rows, ncpus=3, nsigners=2, vms=vms)


def test_vectorised_and_row_walk_agree_on_who_is_current():
    rng = np.random.default_rng(2017)
    seen = {"ok": 0, "current": 0, "other": 0}
    for _ in range(4000):
        tr = _schedule_rows(rng)
        try:
            tr._validate_rows()
            slow = True
            seen["ok"] += 1
        except ConfigError as e:
            slow = False
            seen["current" if "while it is current" in str(e) else "other"] += 1
        assert tr._rows_ok() == slow
    assert min(seen.values()) > 200, seen


# --------------------------------------------------------------------------- the host policy a trace names


def test_the_policy_name_and_the_legacy_allowlist():
    assert _trace().policy == "allow-all" and _trace().approved == ()
    rows = [(0, LAUNCH, 0, -1, -1, 1)]
    legacy = Trace.from_rows(rows, ncpus=1, nsigners=2, allowlist=(0,))  # an allowlist alone: host-only
    assert (legacy.policy, legacy.policy_name, legacy.approved) == ("host-only", "host-only", (0,))
    legacy.validate()  # a host launch of a signer outside it is allowed: the engines refuse it
    named = Trace.from_rows(rows, ncpus=1, nsigners=2, allowlist=[1], policy="Single_LE")
    assert (named.policy, named.allowlist) == ("single-le", (1,))
    with pytest.raises(ConfigError, match="unknown host policy"):
        Trace.from_rows(rows, ncpus=1, nsigners=2, policy="strict")
    with pytest.raises(ConfigError, match="single-le needs its launch enclave"):
        Trace.from_rows(rows, ncpus=1, nsigners=2, policy="single-le").validate()
    with pytest.raises(ConfigError, match=r"allowlist=2: signer index must be in \[0, 2\)"):
        Trace.from_rows(rows, ncpus=1, nsigners=2, allowlist=(2,)).validate()


def test_without_vms_drops_their_rows_and_stays_valid():
    rows = [
        (0, SCHED, 0, 0, 0, -1),
        (1, SCHED, 0, 1, 0, -1),  # VM 1 displaces VM 0 on CPU 0 ...
        (2, LAUNCH, 0, 1, 0, 1),
        (3, SCHED, 0, 0, 0, -1),  # ... until VM 0 is scheduled in again
        (4, S3, -1, -1, -1, -1),
        (
            5,
            LAUNCH,
            0,
            0,
            0,
            0,
        ),
        (6, LAUNCH, 1, -1, -1, 1),
    ]
    tr = Trace.from_rows(rows, ncpus=2, nsigners=2, vms=(VmSpec(1, True, 0), VmSpec(1, False, 1)), policy="allowlist")
    tr.validate()
    assert tr.without_vms([]) is tr and tr.without_vms({5}) is tr
    gone = tr.without_vms({1})
    assert gone.t.tolist() == [0, 3, 4, 5, 6] and gone.vms == tr.vms and gone.policy == "allowlist"
    assert gone.validated and not gone.cpu.flags.writeable  # valid by construction, frozen like its source
    assert gone._rows_ok()
    fresh = Trace.from_rows(rows, ncpus=2, nsigners=2, vms=tr.vms).without_vms({0})
    assert not fresh.validated  # an unchecked trace stays unchecked
    fresh.validate()


def test_counted_exits_are_checked_and_follow_their_vm():
    vms = (VmSpec(1, True, -1), VmSpec(1, True, -1))
    rows = [(0, SCHED, 0, 0, 0, -1), (1, SCHED, 1, 1, 0, -1), (2, EXIT, 1, 1, 0, -1)]
    tr = Trace.from_rows(rows, ncpus=2, nsigners=1, vms=vms, vm_exits=(3, 4))
    tr.validate()
    assert tr.exits == 8
    gone = tr.without_vms({1})
    assert gone.vm_exits == (3, 0) and gone.exits == 3 and len(gone) == 1
    assert tr.without_vms({0}).vm_exits == (0, 4)
    no_rows = Trace.from_rows([(0, LAUNCH, 0, -1, -1, 0)], ncpus=2, nsigners=1, vms=vms, vm_exits=(0, 5))
    no_rows.validate()
    assert no_rows.without_vms({1}).vm_exits == (0, 0)  # a count alone is taken out too
    with pytest.raises(ConfigError, match="trace vm_exits=\\(3,\\): one count per VM \\(2\\)"):
        Trace.from_rows(rows, ncpus=2, nsigners=1, vms=vms, vm_exits=(3,)).validate()
    for bad in ((-1, 0), (1.5, 0), (True, 0)):
        with pytest.raises(ConfigError, match="trace vm_exits=.*an exit count is a whole number"):
            Trace.from_rows(rows, ncpus=2, nsigners=1, vms=vms, vm_exits=bad)
    with pytest.raises(ConfigError, match="trace vm_exits='3': expected a sequence"):
        Trace.from_rows(rows, ncpus=2, nsigners=1, vms=vms, vm_exits="3")  # type: ignore[arg-type]
