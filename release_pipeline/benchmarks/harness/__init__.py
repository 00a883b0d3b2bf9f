"""Programs that run inside the sandbox to judge code an agent wrote (copied in as files, run as scripts)."""
