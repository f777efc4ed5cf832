"""Benchmarks: how many callers one server carries and how fast each step answers.

`hamta-ivr bench` drives simulated callers at FastAGI and classic AGI servers, speaking to them
exactly as Asterisk does (ivr.bench.caller), and prints one table of figures from one run.
"""
