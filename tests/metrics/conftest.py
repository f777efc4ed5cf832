"""The in-process FastAGI server on a demo registry (tests/call's fixture), for the metrics
tests."""

from tests.call.conftest import demo_server  # noqa: F401  (a fixture, used by name)
