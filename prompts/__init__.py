"""Persian prompt catalogue and the builder of the audio Asterisk plays (imported as ivr.prompts).

catalogue.toml holds the words; build.py makes the sounds; check.py verifies them.
"""
