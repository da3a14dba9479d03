"""A local test fleet: systemd 'hosts' in containers, a registry, and an inventory (tests only)."""
