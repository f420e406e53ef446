"""The attack suite's fixtures: the bank host on SQLite and on a throwaway PostgreSQL server
(tests/host/test_bank_flows.py's `bank` and `postgres`)."""

from tests.host.test_bank_flows import bank, postgres  # noqa: F401 (fixtures)
