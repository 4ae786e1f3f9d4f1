"""The mail doors: thin, protocol-shaped adapters that turn what arrives into InboundMessages."""
