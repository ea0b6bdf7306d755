"""Operations: the service (daemon and schedule), backup and restore, recovery of numbers,
the archive of raw mail, alerts, the work lock, privacy (export and prune) and setup checks."""
