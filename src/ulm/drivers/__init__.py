"""Drivers: what ULM acts through. `Hypervisor` per cluster, `Power` per host."""
