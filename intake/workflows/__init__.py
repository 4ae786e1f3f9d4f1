"""The support policy's workflows after intake: the response-goal clock, breach watch, replies
and status reports, escalation, severity requests, contact transfer."""
