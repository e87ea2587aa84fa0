"""The ``starcoder-agents`` command line."""
