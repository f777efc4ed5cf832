"""ivr/call"""
