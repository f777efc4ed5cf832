"""Text-message receipts: their Persian texts (texts.py), Kannel's sendsms client (kannel.py) and
the worker that delivers the registry's outbox through it (worker.py)."""
