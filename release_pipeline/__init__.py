"""release-pipeline: release engineering for LLM agents.

One canonical version line per agent, improved through
run -> critic -> diagnose -> candidate -> gate -> promote.
"""

__version__ = "0.1.0"
