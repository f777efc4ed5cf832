"""The registry, the single source of truth: a module per concern (service.py maps them)."""
