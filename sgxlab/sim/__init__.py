"""The simulator: workloads as traces, and two engines that must agree.

See ``docs/simulator.md`` for the model both engines implement.
"""
