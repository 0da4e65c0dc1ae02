"""Issue 10 responsiveness: how long each widget change blocks the kernel (workshop defaults).

Every app is driven from Python as a test would, each change repeated five
times; the worst and the median are printed. Target: no change blocks the
kernel for more than about 0.3 s. Runs on a background thread (Run, the
policy matrix figure) are joined and reported separately.

    .venv/bin/python bench/apps.py
"""

import statistics
import time

from benchargs import parser

from sgxlab.hw.crypto import load_test_key
from sgxlab.present.apps import einit_lab, msr_playground, policy_chooser, runner, vm_builder

parser(__doc__).parse_args()  # no options: --help prints the docstring's first paragraph


def t(label, f, n=5):
    xs = []
    for _ in range(n):
        a = time.perf_counter()
        f()
        xs.append(time.perf_counter() - a)
    print(f"{label:45s} max {max(xs) * 1000:8.1f} ms  median {statistics.median(xs) * 1000:8.1f} ms")


a = time.perf_counter()
m = msr_playground()
print("build msr", round(time.perf_counter() - a, 3))
w = m.widgets
t("msr: WRMSR click", lambda: w["wrmsr"].click())
t(
    "msr: firmware change",
    lambda: setattr(w["firmware"], "value", "locked-intel" if w["firmware"].value == "flexible" else "flexible"),
)
t("msr: S3", lambda: w["s3"].click())
a = time.perf_counter()
e = einit_lab()
print("build einit", round(time.perf_counter() - a, 3))
w = e.widgets
tok = iter(["LE-issued", "tampered", "none", "LE-issued", "tampered"] * 3)
t("einit: token change", lambda: setattr(w["token"], "value", next(tok)))
pre = iter(["intel", "signer", "launch enclave", "custom", "intel"] * 3)
t("einit: MSR preset change", lambda: setattr(w["msr_preset"], "value", next(pre)))
enc = iter(["launch enclave", "modified copy", "as signed"] * 5)
t("einit: enclave change", lambda: setattr(w["enclave"], "value", next(enc)))
a = time.perf_counter()
v = vm_builder()
print("build vm", round(time.perf_counter() - a, 3))
w = v.widgets
t("vm: lewr toggle", lambda: setattr(w["lewr"], "value", not w["lewr"].value))
hs = iter([load_test_key(i).mrsigner.hex() for i in range(5)] * 3)
t("vm: lehash typed", lambda: setattr(w["lehash"], "value", next(hs)))
t("vm: lehash bad", lambda: setattr(w["lehash"], "value", w["lehash"].value[:-1]))
fw = iter(["no-lc", "locked-intel", "flexible", "locked-third-party", "flexible"] * 3)
t("vm: firmware", lambda: setattr(w["firmware"], "value", next(fw)))
a = time.perf_counter()
p = policy_chooser()
p.worker.join()
print("build policy (+figure, joined)", round(time.perf_counter() - a, 3))
w = p.widgets
pol = iter(list(w["policy"].options) * 3)
t("policy: policy change", lambda: setattr(w["policy"], "value", next(pol)))
a = time.perf_counter()
w["design"].value = "eager-load"
print("policy: design change, first time (kernel blocked)", round(time.perf_counter() - a, 3))
p.worker.join()
t(
    "policy: design change, cached",
    lambda: setattr(w["design"], "value", "always-write" if w["design"].value == "eager-load" else "eager-load"),
)
p.worker.join()
a = time.perf_counter()
r = runner()
print("build runner", round(time.perf_counter() - a, 3))
w = r.widgets
ls = iter(["2000", "1500"] * 5)
t("runner: launches typed", lambda: setattr(w["param_launches"], "value", next(ls)))
cs = iter([400, 1200] * 5)
t("runner: cost slider released", lambda: setattr(w["cost_wrmsr_lehash"], "value", next(cs)))
ps = iter(["allowlist", "host-only", "allow-all"] * 3)
t("runner: policy change", lambda: setattr(w["policy"], "value", next(ps)))
t("runner: vm lewr toggle", lambda: setattr(w["vm_0_lewr"], "value", not w["vm_0_lewr"].value))
pr = iter(["pessimistic-msr", "default"] * 5)
t("runner: cost preset", lambda: setattr(w["preset"], "value", next(pr)))
w["vm_0_lewr"].value = True
a = time.perf_counter()
w["run"].click()
print("runner: Run click returns after (kernel blocked)", round((time.perf_counter() - a) * 1000, 1), "ms")
r.join()
print(
    "runner: whole job (5 designs, fast engine, 3 figures)", round(time.perf_counter() - a, 2), "s", w["status"].value
)
a = time.perf_counter()
w["figure_choice"].value = "latency"
print("runner: figure tab switch", round((time.perf_counter() - a) * 1000, 1), "ms")
