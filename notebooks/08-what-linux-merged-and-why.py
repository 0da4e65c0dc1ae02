# %% [markdown]
# # 8. What Linux merged, and why
#
# Andy's per-CPU cache won the first round and lost the second.
#
# * **2019: the cache is in.** The driver's `sgx_einit()` kept a per-CPU
#   copy of the hash, wrote only changed words, and on an invalid-token
#   error rewrote all four and tried once more (Sean Christopherson and
#   Jarkko Sakkinen, v23, 28 Oct 2019,
#   [lore](https://lore.kernel.org/r/20191028210324.12475-11-jarkko.sakkinen@linux.intel.com)).
# * **September 2020: the cache is out.** In the v38 review:
#   * the MSRs go back to Intel's key whenever enclave memory is lost, for
#     example across suspend and resume, so the cache can be stale at any
#     time (Sean Christopherson, 21 Sep 2020,
#     [lore](https://lore.kernel.org/r/20200921181021.GA24481@linux.intel.com));
#   * if EINIT is that expensive, why count WRMSR cycles? Just write the
#     four MSRs (Borislav Petkov, 22 Sep 2020,
#     [lore](https://lore.kernel.org/r/20200922082918.GC22660@zn.tnic));
#   * writing them costs about 1,200 cycles, next to about 60,000 for EINIT
#     (Sean Christopherson, 22 Sep 2020,
#     [lore](https://lore.kernel.org/r/20200922162944.GA30874@linux.intel.com));
#   * start with always-write and fix it if it ever hurts (Jarkko
#     Sakkinen, 22 Sep 2020,
#     [lore](https://lore.kernel.org/r/20200922115010.GA102220@linux.intel.com)).
# * **Merged (Linux 5.11):** four WRMSRs with preemption off, then EINIT;
#   no cache, no RDMSR (Jarkko Sakkinen, tip commit 9d0c151b41fe, 18 Nov
#   2020, [lkml](https://lkml.kernel.org/r/20201112220135.165028-15-jarkko@kernel.org)).
#   KVM (5.13) traps a guest's EINIT and writes the guest's hash just
#   before it, never on VM entry (Sean Christopherson's changelog, posted
#   by Kai Huang, 12 Apr 2021,
#   [lore](https://lore.kernel.org/r/57c92fa4d2083eb3be9e6355e3882fc90cffea87.1618196135.git.kai.huang@intel.com)).

# %% [markdown]
# ## Reproducing the argument
#
# Sean's numbers as the cost model: 1,200 cycles for four WRMSRs (300
# each) and 60,000 for EINIT. The cache against always-write on
# `workshop`, with the 2019 retry and without:

# %%
import sgxlab
from sgxlab.experiments import check

SEAN_2020 = {"wrmsr_lehash": 300, "einit": 60_000}
DESIGNS = ["always-write", "percpu-cache", "percpu-cache-retry"]

table = sgxlab.compare(DESIGNS, "workshop", costs=SEAN_2020, engine="fast")
table[["design", "wrmsr", "einit", "failures_total", "retries", "latency_mean", "overhead_cycles"]]

# %% [markdown]
# Read it as the reviewers did:
#
# * the cache saves about half the WRMSRs, yet the mean launch gets faster
#   by about one per cent: EINIT dominates;
# * without the retry, the S3 in the middle costs real failures;
# * with the retry, a stale CPU pays a whole extra EINIT, 50 times the
#   four WRMSRs it meant to save;
# * Andy's 2017 cache held one global mutex across EINIT: launches queue
#   behind each other, and the tail latency shows it.
#
# The same comparison, as one would post it to LKML:

# %%
print(table.to_mailing_list())

# %% [markdown]
# ## Predict, then run
#
# **08.1** Over `workshop`'s 2,000 launches (default costs), the WRMSRs
# percpu-cache-retry saves against always-write add up to how many EINITs?

# %%
check("08.1", answer=...)

# %% [markdown]
# **08.2** How many extra EINITs does percpu-cache-retry need to hide the
# stale cache?

# %%
check("08.2", answer=...)

# %% [markdown]
# **08.3** What percentage of always-write's mean launch latency is its
# four WRMSRs?

# %%
check("08.3", answer=...)
