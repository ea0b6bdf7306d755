"""mailbot: a Thai agency's central mailbox (saraban@) as a lawful, automatic front office.

A message's path, one module per step:
fetch -> archive -> parse -> classify -> state (commit) -> replies/send -> fetch (move),
with register (Excel views) written once per cycle. pipeline.py holds the order.
"""
__version__ = "0.1.0"
