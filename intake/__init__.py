"""The intake gateway's core: settings, data model, policy, the intake pipeline and its jobs."""

__version__ = "0.1.0"
