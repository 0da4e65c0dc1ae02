# %% [markdown]
# # 1. The 2017 debate
#
# In May 2017 Kai Huang (Intel) posted KVM support for SGX guests, and Andy
# Lutomirski reviewed it. The question under the details: who owns the four
# launch-control MSRs, the host kernel or the guest, and when must they be
# written? Quotes below are paraphrased; each claim links to lore.
#
# The excerpt we read has lost its quote markers, so most 2017 claims are
# dated to the month. The links search the thread by author and dates.

# %% [markdown]
# ## Where to write the hash
#
# * **Eager load.** Kai's patches loaded a guest's hash into the MSRs when
#   a vCPU is scheduled in; four WRMSRs there need not be slow next to what
#   KVM already does (Kai Huang, 11 May 2017,
#   [lore](https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22+f%3Akai.huang+d%3A20170511..20170512)).
#   Tested in notebook 06.
# * **Per-CPU cache.** Andy suspected the MSRs are slow, and proposed a
#   per-CPU copy of the hash under a lock: write only on change
#   (Andy Lutomirski, May 2017,
#   [lore](https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22+f%3Aluto+d%3A20170501..20170531)).
#   Tested in notebooks 06 and 07.
# * **Read and compare.** EINIT is not a hot path; just read the MSRs and
#   compare (Kai Huang, May 2017, same thread). Tested in notebook 06.

# %% [markdown]
# ## Who decides which enclaves run
#
# * **Trap EINIT.** KVM should keep the guest's hash in memory and emulate
#   EINIT, so one host policy covers guests too (Andy Lutomirski, May 2017).
#   Tested in notebooks 04 and 05.
# * **The little VM.** Restricting enclaves on the host is pointless if host
#   code can start a small VM that runs what the host forbids (Andy
#   Lutomirski, May 2017). Tested in notebook 05.
# * **Emulate the hardware.** A VM should behave like a real machine: if the
#   hardware could run any launch enclave, so should the guest (Kai Huang,
#   May 2017). Kai's compromise: `-sgx epc=…,lehash=…,lewr`, and refuse
#   `lewr` where the host restricts launch enclaves. Tested in 04 and 05.

# %% [markdown]
# ## The table of claims
#
# The same claims, and the later ones that settled the matter (2019 to
# 2021), as data: `sgxlab.experiments.claims.CLAIMS`. Each row names the
# notebook and the exercise (or function) that tests it.

# %%
from IPython.display import HTML

from sgxlab.experiments import check, claims_html, claims_text

HTML(claims_html())

# %% [markdown]
# The same as plain text for an email: 72 columns, except the links, which
# stay whole on their own lines so that they still work:

# %%
print(claims_text())

# %% [markdown]
# ## Predict, then run
#
# **01.1** Who proposed the per-CPU cache of the hash in 2017?

# %%
check("01.1", answer=...)

# %% [markdown]
# **01.2** Which notebook tests the "little VM" argument?

# %%
check("01.2", answer=...)
