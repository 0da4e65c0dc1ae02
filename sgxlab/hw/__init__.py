"""The hardware layer: what an SGX CPU with Flexible Launch Control does.

* :mod:`sgxlab.hw.arch` -- MSR numbers, FEATURE_CONTROL bits, error codes,
  attributes, and :class:`~sgxlab.hw.arch.LeHash` (one parser for every hash a
  user types);
* :mod:`sgxlab.hw.structs` -- byte-exact SIGSTRUCT, EINITTOKEN, SECS, SECINFO;
* :mod:`sgxlab.hw.crypto` -- RSA-3072 (e=3) signatures, AES-CMAC, test keys;
* :mod:`sgxlab.hw.measure` -- ECREATE/EADD/EEXTEND measurement and SGXS;
* :mod:`sgxlab.hw.platform` -- CPUs, their MSRs, firmware, S3;
* :mod:`sgxlab.hw.einit` -- ENCLS[EINIT] and EGETKEY.

Pure Python: no numpy, no pandas. It imports only :mod:`sgxlab.errors` and
:mod:`sgxlab.files`.
"""
