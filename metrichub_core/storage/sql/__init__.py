"""The SQL kit of the storage backends: what SQLite (built in) and PostgreSQL (plugin) share.

Everything here is public, for storage backends (the PostgreSQL plugin imports only
these modules of the core's storage). A rule written here holds for both databases;
what differs between them is a ``Dialect`` (placeholders, types, upsert, JSON):

- ``dialect``: ``Dialect``, ``SQLITE`` and ``POSTGRES``;
- ``events``: the event tables, their columns, events to rows and rows to events;
- ``state``: the ``source_state`` SQL;
- ``paging``: times as microseconds, listing filters, keyset cursors;
- ``migrations``: the schema-version check both backends run before migrating;
- ``rollups``: the dialect-independent half of the DORA queries and rollup DDL;
- ``dora``: the rules of the derived DORA tables (ships, leads and their rollups, incident
  links) as SQL for either dialect.
"""
