"""hamta-ivr: the telephone IVR of the Hamta mobile-device registry."""
