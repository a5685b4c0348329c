"""pytest plugin: registers qplug fixtures; inert until a test uses them."""
