# %% [markdown]
# # 5. Host policies and the little VM
#
# With writable launch control the host kernel decides which enclaves run.
# Can that decision bind its guests too? The 2017 thread had two answers.
#
# * **Andy Lutomirski**: either allow everything, or make VMs at least as
#   strict as host root; otherwise host code can start a little VM and run
#   there what the host forbids (May 2017,
#   [lore](https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22+f%3Aluto+d%3A20170501..20170531)).
#   For that KVM must trap EINIT (same thread).
# * **Kai Huang**: a guest should see what real hardware would show. With one
#   host LE, create only guests without `lewr` whose hash is that LE's; with
#   several, refuse `lewr` and accept only an approved `lehash` (May 2017,
#   [lore](https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22+f%3Akai.huang+d%3A20170501..20170531)).

# %% [markdown]
# ## Six host policies
#
# | policy | from | what it does |
# |---|---|---|
# | `allow-all` | Andy's first option | every signer runs |
# | `allowlist` | Andy's second option | one signer list for host EINIT and every trapped guest EINIT |
# | `single-le` | Kai, one host LE | no `lewr`; the guest's hash must be that LE's |
# | `approved-set` | Kai's compromise | no `lewr`; `lehash` must be approved |
# | `host-only` | a naive host | the list binds the host only: shows the bypass |
# | `mainline` | what Linux merged | every signer; PROVISIONKEY needs a capability |
#
# `mainline`: the driver launches any enclave except those asking for
# PROVISIONKEY (Greg Wettstein's description, 21 Nov 2020,
# [lore](https://lore.kernel.org/r/20201121151259.GA3948@wind.enjellic.com));
# a process gets that bit with an fd of `/dev/sgx_provision` (commit
# c82c61865024), a VM with KVM_CAP_SGX_ATTRIBUTE (reference §5, §7).

# %% [markdown]
# ## The policy matrix
#
# Every policy against every guest configuration (`lewr` or not, initial
# hash, signer), each row a real run on the emulator. Two alarms:
# **bypass** (a guest ran what the host forbids) and **not hardware
# consistent** (a guest saw what no real machine could show).

# %%
# %matplotlib inline
import sgxlab
from sgxlab.experiments import check
from sgxlab.present.plots import plot_policy_matrix

matrix = sgxlab.policy_matrix()
plot_policy_matrix(matrix)

# %% [markdown]
# The alarming rows, with the emulator's reason for each:

# %%
matrix[matrix.bypass | ~matrix.hw_consistent][["policy", "lewr", "lehash", "signer", "launched", "reason"]]

# %% [markdown]
# ## The policy chooser
#
# Pick a policy and a guest; the chooser runs it and explains who refused
# what, and why.

# %%
from sgxlab.present.apps import policy_chooser

policy_chooser()

# %% [markdown]
# ## Predict, then run
#
# **05.1** Under `host-only`, can a `lewr` guest launch an enclave of the
# signer the host forbids?

# %%
check("05.1", answer=...)

# %% [markdown]
# **05.2** How many of the policies in the matrix let no guest bypass them?

# %%
check("05.2", answer=...)

# %% [markdown]
# **05.3** How many policies both stop every bypass *and* keep every guest
# hardware-consistent?

# %%
check("05.3", answer=...)

# %% [markdown]
# **05.4** Will a `single-le` host create a VM with `lewr`?

# %%
check("05.4", answer=...)

# %% [markdown]
# **05.5** An enclave asks for PROVISIONKEY and the MSRs hold its own
# signer. Token-less EINIT: which code?

# %%
check("05.5", answer=...)

# %% [markdown]
# **05.6** Under `mainline`, a guest whose VM lacks KVM_CAP_SGX_ATTRIBUTE
# creates a PROVISIONKEY enclave. What stops it: `"ecreate"`, `"einit"` or
# `"nothing"`?

# %%
check("05.6", answer=...)
