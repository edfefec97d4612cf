"""A test suite as a kbroker user would write it: only the pytest plugin's fixtures (and, for
unittest, `kbroker.testing.Broker`), a real client library, and the code under test."""
