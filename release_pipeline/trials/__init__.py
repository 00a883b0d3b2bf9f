"""The trial engine: running a batch of trials of one version with seeds, leases, verifiers, clocks and executors."""
