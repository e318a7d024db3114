"""Example tests of the sample app, written as a user of runtime.testing writes them."""
