"""Benchmarks: how many callers one server carries and how fast each step answers.

`hamta-ivr bench` drives simulated callers at FastAGI and classic AGI servers, speaking to them
exactly as Asterisk does (the fake Asterisk of ivr.testing.fake_asterisk, through ivr.bench.caller),
and prints one table of figures from one run.
"""
