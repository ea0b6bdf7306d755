"""Host mode: one service running many agencies (a province, a ministry, DGA). Each agency is a
tenant — its own settings file, rules, templates, data and registers folders, numbering, audit
chain and console accounts — whose records live in its own schema of the host's PostgreSQL.

Owns: ``service`` (``mailbot host init/add/list/remove``: the registry of agencies and each
one's health) and ``worker`` (``mailbot host worker``: each agency's cycle and daily jobs as
tasks of procrastinate, PostgreSQL's own job queue, at most one cycle of an agency at a time
across all workers). One office (``mailbot run``) never imports this package.
"""
