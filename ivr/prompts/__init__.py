"""Persian prompt catalogue and the builder of the audio Asterisk plays.

prompts/catalogue.toml (at the top of the source tree, where a translator finds it; linked here as
catalogue.toml) holds the words; build.py makes the sounds; check.py verifies them. This package
imports nothing of the flows or the registry: `hamta-ivr prompts` (ivr/cli/prompts.py) hands it
the prompt keys the flows play and the device names the registry holds.
"""
