"""usgan.cli."""
