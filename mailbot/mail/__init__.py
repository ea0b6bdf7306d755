"""Mail: the wire. The mailbox session (IMAP, IDLE), sending (SMTP), the outbox every outgoing
message goes through, OAuth2 sign-in and the credential store, parsing raw mail and its
charsets, addresses, forwarded originals, and the embedded loopback servers of the demo."""
