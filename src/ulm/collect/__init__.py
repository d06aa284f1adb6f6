"""Collection: one `MetricsSource` protocol, several real sources (libvirt, munin-node)."""
