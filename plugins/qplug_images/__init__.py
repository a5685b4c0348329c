"""qplug built-in plugin (placeholder until written)."""
