"""The gate: the stage that judges a candidate, its sequential planner, its statistics and its cost."""
