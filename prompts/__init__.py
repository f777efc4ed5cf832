"""Persian prompt catalogue and the builder of the audio Asterisk plays (imported as ivr.prompts)."""
