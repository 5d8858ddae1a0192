"""usgan.zoo."""
