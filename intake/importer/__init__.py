"""``intake import``: reading a TOML file of customers and contacts, checking it against the
database, hashing PINs and writing it in one transaction.
"""
