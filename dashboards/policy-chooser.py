# %% [markdown]
# # sgxlab policy chooser
#
# Which guests does each host launch policy let a VM create, and which of
# them can launch an enclave the host itself may not run? Served by Voila
# (`make dashboard`).

# %%
from sgxlab.present.apps import policy_chooser

policy_chooser()
