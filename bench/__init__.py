"""Benchmarks: how many callers one server carries and how fast each step answers.

`hamta-ivr bench` drives simulated callers at FastAGI and classic AGI servers, speaking to them
exactly as Asterisk does (the fake Asterisk of ivr.testing.fake_asterisk, through bench.caller),
and prints one table of figures from one run.

A package beside `ivr`, not inside it: the runtime never imports it (tests/bench/test_layout.py
checks). The command reaches `hamta-ivr` through the entry point `hamta_ivr.commands: bench`
(pyproject.toml, loaded by ivr.cli); the bench's timers reach the registry through the one
declared hook, ivr.registry.observe, like the Prometheus metrics.
"""
