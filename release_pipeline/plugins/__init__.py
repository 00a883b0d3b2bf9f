"""Plugins: the hook specifications, the plugin manager, and the registry of what plugins contribute."""
