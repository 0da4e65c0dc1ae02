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
# # sgxlab: the 2017 Launch Control debate, replayed
#
# In May 2017 Andy Lutomirski and Kai Huang argued on LKML about how Linux
# and KVM should manage the four IA32_SGXLEPUBKEYHASH MSRs that EINIT checks
# ([the thread on lore](https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22)). This kit replays that
# argument on an emulator: real SIGSTRUCT signatures, real MRENCLAVE
# measurement, and a platform whose MSRs follow the SDM's access rules.
#
# This first notebook checks that the kit is installed and shows the
# launch-control MSRs of a freshly reset CPU.

# %%
import sgxlab
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, MSR_IA32_SGXLEPUBKEYHASH
from sgxlab.hw.platform import Platform

print("sgxlab", sgxlab.__version__)

# %% [markdown]
# A platform whose firmware enabled *flexible* launch control: the hash MSRs
# reset to the digest of Intel's launch-enclave signing key, and the OS may
# rewrite them.

# %%
platform = Platform(ncpus=2, firmware="flexible")
cpu = platform.cpu(0)
for msr in MSR_IA32_SGXLEPUBKEYHASH:
    print(f"RDMSR {msr:#x} = {cpu.rdmsr(msr):#018x}")
assert cpu.lehash == INTEL_LEPUBKEYHASH
