"""Fault tests (issue #10, items 3 and 4): workers killed, the database cut off, tasks delivered
twice, an import killed mid-file. See conftest.py and harness.py."""

import pytest

pytest.register_assert_rewrite("tests.faults.checks")
