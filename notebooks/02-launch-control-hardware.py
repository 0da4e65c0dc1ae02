# %% [markdown]
# # 2. Launch-control hardware
#
# Two kinds of MSR decide whose enclaves a CPU will launch:
#
# * **IA32_FEATURE_CONTROL** (MSR 0x3A), set once by firmware at boot.
#   Bit 0 *locks* it; bit 18 enables SGX; **bit 17** enables launch control,
#   i.e. lets software rewrite the hash MSRs at run time.
# * **IA32_SGXLEPUBKEYHASH0..3** (MSRs 0x8C to 0x8F): the SHA-256 hash of
#   the signer EINIT trusts, 64 bits per MSR. At reset they hold the digest
#   of Intel's own signing key.
#
# Sources: Intel SDM Vol. 3C/4 MSR tables and Vol. 3D, as summarised in
# `../shared/reference/hardware-and-einit.md`.

# %%
from sgxlab.errors import GeneralProtection
from sgxlab.experiments import check
from sgxlab.host.samples import signed_enclave
from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH
from sgxlab.hw.platform import Firmware, Platform

# %% [markdown]
# ## Who may read and write them
#
# * **Read**: the CPU must have SGX and report launch control in CPUID
#   (leaf 7, ECX bit 30).
# * **Write**: FEATURE_CONTROL must be locked *with* bit 17 set.
#
# Each firmware setting real machines ship, with one run-time WRMSR:

# %%
enclave = signed_enclave(1)  # a small real enclave, signed with public test key 1
third_party = signed_enclave(2).mrsigner
for name in Firmware.names():
    fw = Firmware.by_name(name, lehash=third_party if name == "locked-third-party" else None)
    cpu = Platform(1, fw).cpu(0)
    try:
        cpu.wrmsr(MSR_IA32_SGXLEPUBKEYHASH[0], enclave.mrsigner.words[0])
        verdict = "WRMSR accepted"
    except GeneralProtection as gp:
        verdict = gp.reason
    print(f"{name:<19} FEATURE_CONTROL={cpu.feature_control:#07x}  {verdict}")

# %% [markdown]
# Linux's driver refuses to load unless the hash MSRs are writable: the
# kernel, not firmware, decides which enclaves run (Jarkko Sakkinen,
# merged 18 Nov 2020,
# [lkml](https://lkml.kernel.org/r/20201112220135.165028-15-jarkko@kernel.org)).
# Every later notebook uses the writable ("flexible") setting.

# %% [markdown]
# ## S3 puts Intel's hash back
#
# The hash MSRs return to Intel's value whenever enclave memory is lost,
# for instance across suspend and resume (Sean Christopherson, 21 Sep 2020,
# [lore](https://lore.kernel.org/r/20200921181021.GA24481@linux.intel.com)).
# Software that *remembers* what it wrote is then wrong. Watch CPU 0:

# %%
platform = Platform(2, "flexible")
cpu = platform.cpu(0)
for msr, word in zip(MSR_IA32_SGXLEPUBKEYHASH, enclave.mrsigner.words):
    cpu.wrmsr(msr, word)
print("after WRMSR:", cpu.lehash.hex())
platform.s3_resume()
print("after S3:   ", cpu.lehash.hex())

# %% [markdown]
# ## The MSR playground
#
# Pick a firmware setting, write, read, suspend; the playground shows
# every MSR of every CPU and why an access was refused.

# %%
from sgxlab.present.apps import msr_playground

msr_playground()

# %% [markdown]
# ## Predict, then run
#
# **02.1** Firmware `locked-intel` locked FEATURE_CONTROL without bit 17.
# Does a run-time WRMSR to IA32_SGXLEPUBKEYHASH0 succeed? (`True`/`False`)

# %%
check("02.1", answer=...)

# %% [markdown]
# **02.2** Write test key 1's hash into CPU 0, then S3. What does CPU 0
# read back: `"intel"`, `"the-written-value"` or `"zero"`?

# %%
check("02.2", answer=...)

# %% [markdown]
# **02.3** On `no-lc` firmware, how many of the four hash MSRs can be read?

# %%
check("02.3", answer=...)
