"""The workspace's files: `release.yaml`, agent manifests, the gate policy, `weights.yaml`, and where each lives."""
