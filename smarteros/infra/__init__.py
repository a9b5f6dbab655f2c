"""Clients for the infrastructure SmarterOS runs on; each module has a `check(timeout)`."""
