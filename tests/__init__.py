"""Tests for alga-appliance-release (unit tests and real-registry integration tests)."""
