"""Integration tests: real docker-registry, helm and kubectl on loopback."""
