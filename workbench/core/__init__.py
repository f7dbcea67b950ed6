"""Pure-Python project state: no Qt, no torch."""
