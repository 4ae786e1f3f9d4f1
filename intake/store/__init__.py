"""The store: the database engine and sessions, the data model and its migrations, the look-ups the
pipeline makes, and the intake log's words.
"""
