# %% [markdown]
# # 4. KVM, `lewr` and `lehash`
#
# A guest kernel wants to launch enclaves too, so it wants its *own* hash
# MSRs. KVM gives each vCPU four **virtual** ones, kept in memory, and the
# host decides when (if ever) they reach the real MSRs. Sources:
# `../shared/reference/linux-kvm-qemu.md` §2 (KVM 5.13) and §5 (QEMU 6.2).

# %%
from sgxlab.experiments import check
from sgxlab.host.samples import signed_enclave
from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH
from sgxlab.hw.platform import Platform
from sgxlab.kvm.config import SgxGuestConfig
from sgxlab.kvm.vcpu import Kvm

# %% [markdown]
# ## Kai's option string
#
# Kai Huang proposed `-sgx epc=<size>,lehash=<hash>,lewr`: the guest's
# enclave memory, the initial value of its hash MSRs, and whether it may
# rewrite them (Kai Huang, May 2017,
# [lore](https://lore.kernel.org/kvm/?q=s%3A%22Basic+KVM+SGX+Virtualization+support%22+f%3Akai.huang+d%3A20170501..20170531)).

# %%
config = SgxGuestConfig.parse("epc=64M,lehash=intel,lewr")
config

# %% [markdown]
# ## A guest writes its hash; the host's MSRs do not move
#
# Andy Lutomirski's plan: KVM stores guest writes in memory, traps EINIT,
# and does nothing on guest entry or exit (May 2017, same thread). KVM
# merged exactly that in 5.13. Here the host runs mainline's design,
# `always-write`; the guest writes test key 3's hash:

# %%
kvm = Kvm(Platform(2, "flexible"), "allow-all", "always-write")
vcpu = kvm.create_vm(config).vcpu(0)
enclave = signed_enclave(3)
for msr, word in zip(MSR_IA32_SGXLEPUBKEYHASH, enclave.mrsigner.words):
    vcpu.wrmsr(msr, word)
print("guest's virtual hash:", vcpu.lehash.hex())
print("host CPU 0's MSRs:   ", kvm.platform.cpu(0).lehash.hex())

# %% [markdown]
# ## Trapped EINIT
#
# The guest's EINIT exits to KVM, which writes the guest's *virtual* hash
# into the real MSRs of the CPU it runs on, then runs EINIT for it.

# %%
result = vcpu.einit(enclave.sigstruct, enclave.fresh())
print(result)
print("host CPU 0's MSRs now:", kvm.platform.cpu(0).lehash.hex())
kvm.counts()

# %% [markdown]
# ## Why not load the MSRs on every VM entry?
#
# Kai's patches did (eager load). KVM's 2021 changelog rejected it: a
# WRMSR of these MSRs costs about 400 cycles on Skylake, while trapping
# EINIT adds about 1,500 cycles to an instruction of tens of thousands
# (Sean Christopherson, posted by Kai Huang, 12 Apr 2021,
# [lore](https://lore.kernel.org/r/57c92fa4d2083eb3be9e6355e3882fc90cffea87.1618196135.git.kai.huang@intel.com)).
# Exercise 04.3 counts the writes; notebook 06 prices them.

# %% [markdown]
# ## What QEMU merged instead
#
# Kai's `lehash` and `lewr` never landed. QEMU 6.2 has a CPU flag,
# `sgxlc`: with it, guest firmware sets FEATURE_CONTROL bit 17 and the
# guest may write its hash; the initial value is always Intel's (QEMU's
# `docs/system/i386/sgx.rst`, summarised in the reference §5).

# %%
qemu = SgxGuestConfig.parse_qemu(
    "-cpu host,+sgx,+sgxlc -object memory-backend-epc,id=mem1,size=64M,prealloc=on -M sgx-epc.0.memdev=mem1"
)
print(qemu)
print(f"guest FEATURE_CONTROL = {kvm.guest_feature_control(qemu):#x}")

# %% [markdown]
# ## The VM builder
#
# Type either option string, pick the host's firmware and policy, and see
# whether the VM is created and what its guest sees.

# %%
from sgxlab.present.apps import vm_builder

vm_builder()

# %% [markdown]
# ## Predict, then run
#
# **04.1** A guest made with `-sgx epc=64M,lehash=<key 1>` (no `lewr`)
# writes IA32_SGXLEPUBKEYHASH0. Does KVM accept it?

# %%
check("04.1", answer=...)

# %% [markdown]
# **04.2** A `lewr` guest under `always-write` writes its four hash MSRs.
# How many hardware WRMSRs does that cause?

# %%
check("04.2", answer=...)

# %% [markdown]
# **04.3** Under `eager-load`, a `lewr` vCPU is scheduled in 10 times and
# launches nothing. How many hardware hash-MSR writes?

# %%
check("04.3", answer=...)

# %% [markdown]
# **04.4** Which QEMU 6.2 option decides whether a guest may write its hash
# MSRs: `"sgxlc"`, `"lewr"`, `"lehash"` or `"epc"`?

# %%
check("04.4", answer=...)
