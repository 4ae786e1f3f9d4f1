"""The mail door: the SMTP listener and the IMAP poller, a message turned into an inbound item,
and the worker's half of a mail row (acknowledgment, bounces, attachments).
"""
