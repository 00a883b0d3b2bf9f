"""The `release` command line: thin commands over the stages and queries."""
