"""Shared helpers of the tests (a package: import from ``tests.support``)."""
