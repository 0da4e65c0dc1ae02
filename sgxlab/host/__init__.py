"""Host software: what the kernel and its helpers do on the hardware.

* :mod:`sgxlab.host.designs` -- the MSR-update designs of the 2017 debate
  (kernel behaviour that KVM calls: ``sgx_update_lepubkeyhash`` and friends);
* :mod:`sgxlab.host.le` -- a policy-driven launch enclave (the token flow);
* :mod:`sgxlab.host.samples` -- small signed sample enclaves.
"""
