# %% [markdown]
# # 3. EINIT up close
#
# An enclave is built page by page; the CPU hashes every page as it is
# added (the **MRENCLAVE**). The author signs that hash with an RSA-3072
# key in a **SIGSTRUCT**. EINIT checks the signature, the measurement, and
# that the signer may launch, then seals the enclave.
#
# Source: the SDM's EINIT check order, as summarised in
# `../shared/reference/hardware-and-einit.md` §4.

# %%
from sgxlab.experiments import check, launch_enclave_sample
from sgxlab.host.designs import AlwaysWrite
from sgxlab.host.le import LaunchEnclave
from sgxlab.hw.arch import SgxError
from sgxlab.hw.crypto import load_test_key, sign_sigstruct
from sgxlab.hw.einit import einit
from sgxlab.hw.measure import Enclave
from sgxlab.hw.platform import Platform
from sgxlab.hw.structs import PT_TCS, SECINFO_R, SECINFO_X, Secinfo, Secs, Sigstruct

# %% [markdown]
# ## Measure and sign
#
# ECREATE, then a code page and a thread-control page (EADD and EEXTEND).
# The hash of what was added is the MRENCLAVE; the signer's hash is the
# **MRSIGNER**, SHA-256 of the public key.

# %%
enclave = Enclave(Secs.new(size=0x2000))
enclave.add_page(0x0000, Secinfo.of(SECINFO_R | SECINFO_X), b"\xf4" * 4096)
enclave.add_page(0x1000, Secinfo.of(0, PT_TCS))
key = load_test_key(7)
sigstruct = sign_sigstruct(key, Sigstruct.new(enclavehash=enclave.mrenclave()))
print("MRENCLAVE", enclave.mrenclave().hex())
print("MRSIGNER ", key.mrsigner.hex())

# %% [markdown]
# ## Token-less launch, the way Linux does it
#
# Linux writes the enclave's own signer into the MSRs and gives EINIT an
# empty token (VALID=0). EINIT then accepts only if MRSIGNER equals the
# MSRs. Under Intel's reset value the same enclave is refused; after
# mainline's `sgx_update_lepubkeyhash` (four WRMSRs) it launches.

# %%
platform = Platform(4, "flexible")
linux = AlwaysWrite(platform)
cpu = platform.cpu(2)
print(einit(cpu, sigstruct, enclave.fork()))
linux.update_lepubkeyhash(cpu, key.mrsigner.words)
print(einit(cpu, sigstruct, enclave.fork()))

# %% [markdown]
# ## Launch with a token
#
# The older flow: a *launch enclave* (LE) whose signer is in the MSRs
# issues an EINITTOKEN, a MAC over the enclave's identity with a key only
# that CPU can derive while the MSRs hold the LE's signer.

# %%
le = LaunchEnclave.create(load_test_key(0), allowlist=[key.mrsigner])
linux.update_lepubkeyhash(cpu, le.mrsigner.words)
print("LE:     ", le.launch(cpu))
token = le.get_token(sigstruct)
print("token:  ", token.reason or "granted")
print("enclave:", einit(cpu, sigstruct, enclave.fork(), token.token))

# %% [markdown]
# ## Intel's own launch enclave
#
# With the third-party vectors present this is Intel's production LE
# SIGSTRUCT (its image is not public, so the enclave stands for its
# MRENCLAVE); otherwise a stand-in signed with a test key. An LE asks for
# EINITTOKEN_KEY, which EINIT grants only when the MSRs hold its signer:
# under the reset value Intel's LE launches, and the stand-in is refused
# with SGX_INVALID_ATTRIBUTE (2).

# %%
intel_le = launch_enclave_sample()
print(intel_le.origin)
fresh = Platform(1, "flexible").cpu(0)
print(einit(fresh, intel_le.sigstruct, intel_le.enclave()))

# %% [markdown]
# ## The error codes
#
# EINIT reports the first check that failed, as a number in RAX:

# %%
for code in (
    SgxError.SGX_INVALID_SIG_STRUCT,
    SgxError.SGX_INVALID_ATTRIBUTE,
    SgxError.SGX_INVALID_MEASUREMENT,
    SgxError.SGX_INVALID_SIGNATURE,
    SgxError.SGX_INVALID_EINITTOKEN,
    SgxError.SGX_UNMASKED_EVENT,
):
    print(f"{int(code):>4}  {code.name}")

# %% [markdown]
# ## The EINIT lab
#
# Choose a signer, the MSRs, a token and the attributes; the lab runs
# EINIT and names the check that decided.

# %%
from sgxlab.present.apps import einit_lab

einit_lab()

# %% [markdown]
# ## Predict, then run
#
# **03.1** Token-less EINIT of an enclave signed by test key 1 while the
# MSRs hold Intel's hash: which code? (a number, or its name)

# %%
check("03.1", answer=...)

# %% [markdown]
# **03.2** The MSRs hold key 1's hash, but one page differs from the
# signed enclave: which code?

# %%
check("03.2", answer=...)

# %% [markdown]
# **03.3** A launch enclave (EINITTOKEN_KEY set) while the MSRs hold test
# key 5's hash: which code?

# %%
check("03.3", answer=...)
