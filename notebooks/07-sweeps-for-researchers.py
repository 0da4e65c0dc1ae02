# %% [markdown]
# # 7. Sweeps for researchers
#
# Nobody has published the cost of *reading* these MSRs, and the cost of
# writing them has been quoted as "unusually slow" (Andy Lutomirski's
# guess, May 2017,
# [lore](https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22+f%3Aluto+d%3A20170501..20170531)),
# about 400 cycles each on Skylake (KVM changelog, 12 Apr 2021,
# [lore](https://lore.kernel.org/r/57c92fa4d2083eb3be9e6355e3882fc90cffea87.1618196135.git.kai.huang@intel.com))
# and 1,200+ for all four (Sean Christopherson, 22 Sep 2020,
# [lore](https://lore.kernel.org/r/20200922162944.GA30874@linux.intel.com)).
# So do not trust one number: sweep it. The sweeps here are small so the
# notebook runs in seconds; scale them up with `sgxlab sweep` (README).

# %%
# %matplotlib inline
import tempfile
from pathlib import Path

import sgxlab
from sgxlab.experiments import check
from sgxlab.present.export import save_figure

DESIGNS = ["eager-load", "percpu-cache-retry", "read-compare", "always-write"]
PARAMS = {"launches": 500}

# %% [markdown]
# ## Cost sensitivity
#
# Every design on the same traces, the WRMSR cost from 100 to 4,000 cycles,
# two seeds. One row per run:

# %%
sweep = sgxlab.sweep(
    DESIGNS, "workshop", {"wrmsr_lehash": [100, 400, 1200, 4000]}, params=PARAMS, seeds=2, progress=False
)
sweep.groupby(["wrmsr_lehash", "design"])["overhead_cycles"].mean().unstack()

# %% [markdown]
# ## Crossovers
#
# Where does one design overtake another? Eager load pays at every
# schedule-in and never traps EINIT; the others pay per launch.

# %%
sweep.plot_crossover("wrmsr_lehash")

# %% [markdown]
# Which design is cheapest over two costs at once, the WRMSR and the
# trapped-EINIT exit:

# %%
grid = sgxlab.sweep(
    DESIGNS,
    "workshop",
    {"wrmsr_lehash": [100, 400, 1200, 4000], "encls_trap": [500, 1500, 5000]},
    params=PARAMS,
    progress=False,
)
grid.plot_winner("wrmsr_lehash", "encls_trap")

# %% [markdown]
# Eager load wins while WRMSR is cheap and a trapped EINIT is dear; the
# cache wins everywhere else. Always-write is never the cheapest, yet Linux
# merged it: notebook 08 shows why the difference did not matter.

# %% [markdown]
# ## Exporting for a mailing list
#
# Plain text, 72 columns, value ± standard deviation over seeds, a
# `%change` column and the command that reproduces it:

# %%
seeds = sgxlab.compare_seeds(
    ["always-write", "percpu-cache-retry", "read-compare"], "workshop", params=PARAMS, seeds=3, engine="fast"
)
print(seeds.to_mailing_list())

# %% [markdown]
# Figures are written byte-identically, with the run's configuration in
# their metadata (here into a temporary folder):

# %%
out = Path(tempfile.mkdtemp(prefix="sgxlab-"))
save_figure(seeds.plot_msr_traffic(), out / "msr-traffic.svg")

# %% [markdown]
# ## Predict, then run
#
# **07.1** As `wrmsr_lehash` goes from 400 to 4,000 cycles, does
# always-write's overhead minus read-compare's `"grows"`, `"shrinks"` or
# `"stays"`?

# %%
check("07.1", answer=...)

# %% [markdown]
# **07.2** Over seeds 0, 1 and 2 of a 500-launch `workshop`, on how many
# seeds does `percpu-cache` fail a launch?

# %%
check("07.2", answer=...)

# %% [markdown]
# **07.3** At which WRMSR cost (100, 400, 1,200 or 4,000) does eager-load
# stop having the least overhead?

# %%
check("07.3", answer=...)
