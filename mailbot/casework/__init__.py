"""Casework: cases and their workflow, document completeness, urgency and secrecy (triage),
trust in senders, the texts of replies, and sending results back."""
