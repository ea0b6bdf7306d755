"""Store: the database. The connection, transactions and versioned migrations, and every SQL
statement mailbot runs."""
