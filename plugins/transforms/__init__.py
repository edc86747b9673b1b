"""Built-in transforms."""
