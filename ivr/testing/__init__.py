"""Test doubles of the telephone side, shipped with the package (like panoramisk.testing).

`fake_asterisk`: a FastAGI peer that speaks as Asterisk 22 does, with a scripted caller (the
tests, the transcript tests over FastAGI, the bench's load generator). `transcript`: recorded AGI
exchanges (from the real Asterisk) replayed in-process as an AgiTransport. Nothing in ivr.call or
ivr.flows imports this package.
"""
