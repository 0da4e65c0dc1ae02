# %% [markdown]
# # sgxlab runner
#
# Run one MSR-update design on one workload under one host launch policy,
# and read the figure and the summary. Served by Voila (`make dashboard`);
# the same app is in `notebooks/06-*.ipynb`.

# %%
from sgxlab.present.apps import runner

runner()
