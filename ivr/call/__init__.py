"""The call API every flow is written against, and its channels: console, FastAGI, classic AGI."""
