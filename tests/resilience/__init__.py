"""Resilience suites: faults, bad input and crashes (issue #8)."""
