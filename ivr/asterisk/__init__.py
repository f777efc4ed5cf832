"""ivr/asterisk"""
