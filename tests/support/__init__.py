"""Helpers shared by the test suite; fixtures in tests/conftest.py are thin wrappers over them."""
