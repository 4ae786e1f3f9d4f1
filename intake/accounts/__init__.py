"""Accounts: salted secret hashes, staff logins and their sign-in, and API tokens."""
