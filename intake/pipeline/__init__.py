"""The intake pipeline: the inbound item every door produces, the ordered steps that decide it, the
group-commit recorder, and the finishing of a decided row.
"""
