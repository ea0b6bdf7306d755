"""Console: the officer's desk — a local web page in Thai (``mailbot console``, also served by
``mailbot run``).

Owns: the web face of the application core. ``web.py`` builds the Flask app (one ``app.Office``
per request), ``views.py`` the pages and forms, ``auth.py`` officer accounts (scrypt) and
sign-in sessions, ``security.py`` what keeps a page from another site or a hostile e-mail from
acting or reading (Host and Origin checks, CSRF tokens, strict headers, safe downloads), and
``server.py`` serving it with waitress in a thread. Every action is an ``Office`` method: the
same one the command line calls. Nothing here imports Flask until a server is made.
"""
