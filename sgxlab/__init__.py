"""sgxlab: replay the 2017 SGX Launch Control debate on a faithful emulator."""

__version__ = "0.1.0"
