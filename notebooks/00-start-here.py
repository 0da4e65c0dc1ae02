# %% [markdown]
# # 0. Start here
#
# **SGX** (Intel Software Guard Extensions) lets a program run code in an
# *enclave*: memory the rest of the machine, kernel included, cannot read.
# Before an enclave may run, the CPU instruction **EINIT** checks who
# signed it. With *launch control*, four MSRs, `IA32_SGXLEPUBKEYHASH0..3`,
# say which signer EINIT trusts, and the operating system may rewrite them.
#
# In May 2017 Andy Lutomirski and Kai Huang argued on LKML about when Linux
# and KVM should write those MSRs, and whether a host can impose a launch
# policy on its guests
# ([thread on lore](https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22)).
# This kit replays that argument on an emulator: real signatures, real
# measurements, MSRs that follow the SDM's rules, and a simulator that
# prices each design.

# %% [markdown]
# ## How to use these notebooks
#
# * Run the cells from top to bottom (Shift-Enter, or *Run All*).
# * **Widgets** (sliders, drop-downs, buttons) rerun an experiment as you
#   change them; nothing you click changes the files on disk.
# * **Predict, then run.** Each notebook asks a few questions. Replace the
#   `...` in `check("00.1", answer=...)` with your guess and run the cell:
#   the answer comes from running the experiment, with an explanation.
#   Left as `...`, the cell just says "not answered yet".
# * Every claim about the debate names its author, date and a lore link.

# %% [markdown]
# ## The series
#
# | notebook | what you will see |
# |---|---|
# | 01 the 2017 debate | who argued what, and which notebook tests each claim |
# | 02 launch-control hardware | FEATURE_CONTROL, the hash MSRs, their access rules, S3 |
# | 03 EINIT up close | measuring, signing, token-less and token launches, error codes |
# | 04 KVM, lewr and lehash | guests, their virtual MSRs, trapped EINIT, QEMU's options |
# | 05 host policies and the little VM | can a host's launch policy bind its guests? |
# | 06 what each design costs | cache, read-compare, eager-load, always-write, on workloads |
# | 07 sweeps for researchers | cost sensitivity, crossovers, exports for a mailing list |
# | 08 what Linux merged and why | the cache of 2019, dropped in 2020, reproduced |

# %% [markdown]
# ## Is the kit installed?
#
# A fresh CPU whose firmware enabled *flexible* launch control: its hash
# MSRs reset to the digest of Intel's launch-enclave signing key.

# %%
import sgxlab
from sgxlab.experiments import check
from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH
from sgxlab.hw.platform import Platform

print("sgxlab", sgxlab.__version__)
cpu = Platform(ncpus=2, firmware="flexible").cpu(0)
for msr in MSR_IA32_SGXLEPUBKEYHASH:
    print(f"RDMSR {msr:#x} = {cpu.rdmsr(msr):#018x}")

# %% [markdown]
# ## A first widget
#
# The MSR playground of notebook 2: pick a firmware setting and a CPU,
# write or read a hash MSR, or suspend the machine, and see what the
# hardware answers.

# %%
from sgxlab.present.apps import msr_playground

msr_playground(ncpus=2)

# %% [markdown]
# ## Predict, then run
#
# **00.1** How many MSRs hold the hash of the launch-enclave signer?
# (You have just seen it; try the mechanism anyway.)

# %%
check("00.1", answer=...)
