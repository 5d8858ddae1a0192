"""Built-in plugins. Each module here is an entry point of the ``usgan`` group, registered
through the same hooks as any third-party plugin (see docs/plugins.md)."""
