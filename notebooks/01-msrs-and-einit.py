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
# # 1. The launch-control MSRs and EINIT
#
# EINIT checks an enclave's signer against the four IA32_SGXLEPUBKEYHASH
# MSRs of the CPU it runs on. Whether software may write those MSRs is
# decided by firmware, once, when it locks IA32_FEATURE_CONTROL: with bit 17
# set they are writable at run time ("flexible launch control"), without it
# they are frozen. This notebook shows both, then runs EINIT and reads its
# answer, which always names the check that failed and the values compared.
#
# Sources: Intel SDM Vol. 3C (MSRs 0x3A, 0x8C-0x8F) and Vol. 3D (ENCLS[EINIT]);
# every module of `sgxlab` cites where each rule comes from.

# %%
from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH
from sgxlab.hw.einit import einit
from sgxlab.errors import GeneralProtection
from sgxlab.hw.platform import Firmware, Platform
from sgxlab.host.samples import signed_enclave

# %% [markdown]
# ## Firmware decides who may write the MSRs
#
# Try one run-time WRMSR on each firmware configuration real machines ship.

# %%
enclave = signed_enclave(1)  # a small real enclave, signed with public test key 1
for name in Firmware.names():
    fw = Firmware.by_name(name, lehash=signed_enclave(2).mrsigner if name == "locked-third-party" else None)
    cpu = Platform(1, fw).cpu(0)
    try:
        cpu.wrmsr(MSR_IA32_SGXLEPUBKEYHASH[0], enclave.mrsigner.words[0])
        verdict = "WRMSR accepted"
    except GeneralProtection as gp:
        verdict = gp.reason
    print(f"{name:<20} FEATURE_CONTROL={cpu.feature_control:#07x}  {verdict}")

# %% [markdown]
# ## Token-less launch, the way Linux does it
#
# Linux writes the enclave's own signer into the MSRs and runs EINIT with an
# all-zero token. Under Intel's reset value the same enclave is refused.

# %%
platform = Platform(4, "flexible")
cpu = platform.cpu(2)
print(einit(cpu, enclave.sigstruct, enclave.fresh()))
for msr, word in zip(MSR_IA32_SGXLEPUBKEYHASH, enclave.mrsigner.words):
    cpu.wrmsr(msr, word)
print(einit(cpu, enclave.sigstruct, enclave.fresh()))

# %% [markdown]
# ## S3 resets the MSRs
#
# A suspend/resume cycle puts Intel's hash back on every CPU. Any software
# that *remembers* what it wrote (a per-CPU cache) is now wrong, and EINIT
# says so: this is why Linux dropped its cache in 2020.

# %%
platform.s3_resume()
result = einit(cpu, enclave.sigstruct, enclave.fresh())
print(result)
assert result.name == "SGX_INVALID_EINITTOKEN"
