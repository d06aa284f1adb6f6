"""`ulm lab`: a real libvirt cluster on one machine, for the demo, the tests and for trying ULM.

Each "host" is a real libvirtd in its own network, mount, UTS and cgroup namespace on a private
bridge; QEMU guests run under TCG and live-migrate between hosts for real. The lab's network
(10.77.0.0/24) exists only inside its namespaces; the root namespace gets an "unreachable"
route for it before anything uses a lab address.
"""
