# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. The debate, replayed
#
# Five designs for getting IA32_SGXLEPUBKEYHASH right before EINIT, run on
# one workload. `workshop` is small on purpose: four CPUs, host launches and
# three VMs (two may write their hash, one may not), overcommitted vCPUs that
# migrate, and one S3 suspend/resume in the middle. Change `COSTS` to
# `"pessimistic-msr"` (Andy's "these MSRs may be unusually slow") and re-run.

# %%
import sgxlab

WORKLOAD = "workshop"
COSTS = "skylake-2021"
ENGINE = "exact"  # every EINIT runs on the emulator; "fast" gives the same numbers

# %%
table = sgxlab.compare(None, WORKLOAD, costs=COSTS, engine=ENGINE)
table[["design", "launches", "wrmsr", "rdmsr", "failures_total", "retries",
       "latency_mean", "latency_p99", "overhead_cycles"]]

# %% [markdown]
# A failure here is not a counter the simulator made up: it is the code the
# emulated EINIT returned. The reason for the first one of each kind:

# %%
run = sgxlab.run(design="percpu-cache", workload=WORKLOAD, costs=COSTS, engine="exact")
run.failure_examples

# %% [markdown]
# ## The "little VM" argument
#
# Andy Lutomirski: a host launch policy means nothing if host code can start
# a small VM that runs what the host forbids. Kai Huang: a guest told it may
# write its MSRs must see hardware behaviour. Every host policy against every
# guest configuration, run on the emulator:

# %%
matrix = sgxlab.policy_matrix()
matrix[matrix.bypass | ~matrix.hw_consistent]
