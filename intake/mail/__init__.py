"""The mail door: the SMTP listener, the IMAP poller, and finishing a mail row."""
