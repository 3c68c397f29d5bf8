"""Support code for the tests: real processes they start (an anvil node)."""
