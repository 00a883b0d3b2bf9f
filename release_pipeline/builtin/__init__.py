"""Built-in behaviour, registered as ordinary plugins (one module per kind)."""
