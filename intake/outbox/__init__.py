"""The outbox: composing acknowledgments and text messages as rows, the per-address rate limit,
signed links, and delivery through the relay.
"""
