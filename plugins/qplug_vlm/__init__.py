"""Q-Instruct-style multimodal model backend (being written)."""
