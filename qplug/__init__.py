"""qplug: frame-level image and video quality through pluggy plugins."""
__version__ = "0.1.0"
