"""Training recipes for qplug models (see issue 4)."""
