"""Running untrusted code: the isolation backend, the sandboxed agent workers, and what an agent may return."""
