"""ivr/flows"""
