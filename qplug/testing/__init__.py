"""Plugin-author kit: fixtures and conformance tests for qplug plugins."""
