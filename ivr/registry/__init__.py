"""ivr/registry"""
