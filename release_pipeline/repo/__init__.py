"""What release-pipeline does to git: commits and tags, the version line's ref, patch files."""
