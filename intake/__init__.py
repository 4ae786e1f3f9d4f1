"""The intake gateway: the command and its configuration, with one package per capability (see the
README's Layout).
"""

__version__ = "0.1.0"
