"""The support policy's workflows after intake: the response-goal clock, the breach watch, replies
and status reports, escalation, severity requests and contact transfer.
"""
