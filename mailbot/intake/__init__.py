"""Intake: one polling cycle (fetch, decide, record, move, send), the per-message verdict and
the rule table a subject is classified against."""
