# %% [markdown]
# # 6. What each design costs
#
# Five ways to get the hash MSRs right before EINIT, each from the debate:
#
# | design | idea | from |
# |---|---|---|
# | `eager-load` | load the guest's hash at every vCPU schedule-in | Kai Huang's 2017 patches |
# | `percpu-cache` | per-CPU copy under one global mutex; write on change | Andy Lutomirski, May 2017 |
# | `percpu-cache-retry` | the same, per-CPU, plus one forced retry | the driver of 2019 (v23) |
# | `read-compare` | RDMSR the four words, WRMSR those that differ | Kai Huang, May 2017 |
# | `always-write` | four WRMSRs before every EINIT | Linux 5.11 and KVM 5.13 |
#
# Links: the 2017 thread
# ([Andy](https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22+f%3Aluto+d%3A20170501..20170531),
# [Kai](https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22+f%3Akai.huang+d%3A20170501..20170531));
# v23 (Sean Christopherson and Jarkko Sakkinen, 28 Oct 2019,
# [lore](https://lore.kernel.org/r/20191028210324.12475-11-jarkko.sakkinen@linux.intel.com));
# mainline (Jarkko Sakkinen, merged 18 Nov 2020,
# [lkml](https://lkml.kernel.org/r/20201112220135.165028-15-jarkko@kernel.org)).

# %% [markdown]
# ## The workshop workload
#
# Small on purpose: 2,000 launches on four CPUs, host launches and three
# VMs (two with `lewr`), vCPUs that migrate, and **one S3** in the middle.
# Costs are the default model (a hash WRMSR 400 cycles, EINIT 60,000).

# %%
# %matplotlib inline
import sgxlab
from sgxlab.experiments import check

WORKLOAD = "workshop"
ENGINE = "fast"  # "exact" runs every EINIT on the emulator: same numbers, slower

table = sgxlab.compare(None, WORKLOAD, engine=ENGINE)
table[["design", "wrmsr", "rdmsr", "failures_total", "retries", "latency_p99", "overhead_cycles"]]

# %%
table.plot_msr_traffic()

# %%
table.plot_latency()

# %%
table.plot_overhead()

# %% [markdown]
# ## The stale cache after S3
#
# S3 resets the MSRs to Intel's hash, but a per-CPU cache keeps its value
# (Sean Christopherson, 21 Sep 2020,
# [lore](https://lore.kernel.org/r/20200921181021.GA24481@linux.intel.com)).
# The next launch on that CPU skips the write, and EINIT refuses it. The
# run's first failure, as a race between two CPUs:

# %%
print(table.timeline_text("percpu-cache"))

# %% [markdown]
# The same story on the CPU timeline:

# %%
table.plot_timeline(design="percpu-cache", seed=0)

# %% [markdown]
# ## The runner
#
# Choose designs, a workload, its parameters and costs; the runner
# simulates and draws the figures above for your choice.

# %%
from sgxlab.present.apps import runner

runner()

# %% [markdown]
# ## Predict, then run
#
# **06.1** On `workshop`, which design writes the hash MSRs most often?

# %%
check("06.1", answer=...)

# %% [markdown]
# **06.2** How many launches fail under `percpu-cache` (seed 0)?

# %%
check("06.2", answer=...)

# %% [markdown]
# **06.3** How many RDMSRs per launch does `read-compare` do?

# %%
check("06.3", answer=...)

# %% [markdown]
# **06.4** Which design has the worst p99 launch latency, and why?

# %%
check("06.4", answer=...)
