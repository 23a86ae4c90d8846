"""Search over a person's sessions: their titles, prompts and answers (playground.session_search).

PostgreSQL: each of the three tables gets ``search_vector``, a stored generated column
``to_tsvector('simple', ...)`` of its text, with a GIN index. Stored, because ranking and
checking a row reads it: recomputing to_tsvector costs about 300 µs per answer of a few
hundred words, so ranking 1,500 answers from an expression index took half a second
(docs/performance.md). Django's models do not declare the columns; nothing but the search
reads them. A long text is indexed by its first 200,000 characters: a tsvector holds at most
1 MB of distinct words, and an answer past that would otherwise fail to save.

Both: a partial index of the deleted sessions (playground.session_list's purge).

SQLite: one FTS5 table, ``playground_search``, with a row per title, prompt and answer
(its rowid is the source row's id times 4, plus 0, 1 or 2 for which of them), kept up to
date by triggers on the three tables, so every write path (the ORM, bulk updates, cascades
of a deleted session) keeps it true. A later migration that makes Django rebuild one of
these tables (SQLite's way to alter a column) drops its triggers with the old table: it
must create them again (tests/playground/test_session_search_sqlite.py checks they exist).
"""

from typing import Any

from django.db import migrations

INDEXED_CHARS = 200_000
TEXTS = [
    ("playground_session", "title", "session_title_search"),
    ("playground_turn", "prompt", "turn_prompt_search"),
    ("playground_response", "text", "response_text_search"),
]

# Deleted sessions, a handful at any time: every read of a person's list, and every
# search, asks for the overdue ones, which without it reads all of the person's sessions.
DELETED_FORWARD = [
    "CREATE INDEX session_deleted ON playground_session (deleted_at) WHERE deleted_at IS NOT NULL"
]
DELETED_BACKWARD = ["DROP INDEX IF EXISTS session_deleted"]

POSTGRES_FORWARD = [
    sql
    for table, column, index in TEXTS
    for sql in (
        f"ALTER TABLE {table} ADD COLUMN search_vector tsvector GENERATED ALWAYS AS"
        f" (to_tsvector('simple'::regconfig, left({column}, {INDEXED_CHARS}))) STORED",
        f"CREATE INDEX {index} ON {table} USING gin (search_vector)",
    )
] + DELETED_FORWARD
POSTGRES_BACKWARD = DELETED_BACKWARD + [
    f"ALTER TABLE {table} DROP COLUMN search_vector" for table, _, _ in TEXTS
]

# kind: 0 a session's title, 1 a turn's prompt, 2 a response's text.
SQLITE_FORWARD = [
    # session_id first: reading it then skips the body (SQLite reads a record's columns in
    # order, and a long body spills into overflow pages).
    "CREATE VIRTUAL TABLE playground_search USING fts5("
    "session_id UNINDEXED, body, tokenize = 'unicode61 remove_diacritics 2')",
    # Titles
    """CREATE TRIGGER playground_search_session_ai AFTER INSERT ON playground_session
    WHEN new.title != '' BEGIN
      INSERT INTO playground_search (rowid, body, session_id) VALUES (new.id * 4, new.title, new.id);
    END""",
    """CREATE TRIGGER playground_search_session_au AFTER UPDATE OF title ON playground_session
    BEGIN
      DELETE FROM playground_search WHERE rowid = old.id * 4;
      INSERT INTO playground_search (rowid, body, session_id)
        SELECT new.id * 4, new.title, new.id WHERE new.title != '';
    END""",
    """CREATE TRIGGER playground_search_session_ad AFTER DELETE ON playground_session
    BEGIN
      DELETE FROM playground_search WHERE rowid = old.id * 4;
    END""",
    # Prompts
    """CREATE TRIGGER playground_search_turn_ai AFTER INSERT ON playground_turn
    WHEN new.prompt != '' BEGIN
      INSERT INTO playground_search (rowid, body, session_id)
        VALUES (new.id * 4 + 1, new.prompt, new.session_id);
    END""",
    """CREATE TRIGGER playground_search_turn_au AFTER UPDATE OF prompt, session_id ON playground_turn
    BEGIN
      DELETE FROM playground_search WHERE rowid = old.id * 4 + 1;
      INSERT INTO playground_search (rowid, body, session_id)
        SELECT new.id * 4 + 1, new.prompt, new.session_id WHERE new.prompt != '';
    END""",
    """CREATE TRIGGER playground_search_turn_ad AFTER DELETE ON playground_turn
    BEGIN
      DELETE FROM playground_search WHERE rowid = old.id * 4 + 1;
    END""",
    # Answers: empty while pending or streaming, written when they end.
    """CREATE TRIGGER playground_search_response_ai AFTER INSERT ON playground_response
    WHEN new.text != '' BEGIN
      INSERT INTO playground_search (rowid, body, session_id)
        SELECT new.id * 4 + 2, new.text, t.session_id FROM playground_turn t WHERE t.id = new.turn_id;
    END""",
    """CREATE TRIGGER playground_search_response_au AFTER UPDATE OF text, turn_id ON playground_response
    BEGIN
      DELETE FROM playground_search WHERE rowid = old.id * 4 + 2;
      INSERT INTO playground_search (rowid, body, session_id)
        SELECT new.id * 4 + 2, new.text, t.session_id FROM playground_turn t
        WHERE t.id = new.turn_id AND new.text != '';
    END""",
    """CREATE TRIGGER playground_search_response_ad AFTER DELETE ON playground_response
    BEGIN
      DELETE FROM playground_search WHERE rowid = old.id * 4 + 2;
    END""",
    # What is already there.
    """INSERT INTO playground_search (rowid, body, session_id)
      SELECT id * 4, title, id FROM playground_session WHERE title != ''""",
    """INSERT INTO playground_search (rowid, body, session_id)
      SELECT id * 4 + 1, prompt, session_id FROM playground_turn WHERE prompt != ''""",
    """INSERT INTO playground_search (rowid, body, session_id)
      SELECT r.id * 4 + 2, r.text, t.session_id
      FROM playground_response r JOIN playground_turn t ON t.id = r.turn_id WHERE r.text != ''""",
    *DELETED_FORWARD,
]
SQLITE_BACKWARD = [
    *DELETED_BACKWARD,
    *(
        f"DROP TRIGGER IF EXISTS playground_search_{table}_{event}"
        for table in ("session", "turn", "response")
        for event in ("ai", "au", "ad")
    ),
    "DROP TABLE IF EXISTS playground_search",
]


def _run(schema_editor: Any, statements: dict[str, list[str]]) -> None:
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def forward(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD})


def backward(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD})


class Migration(migrations.Migration):
    dependencies = [("playground", "0011_sessions_sharing_sets")]
    operations = [migrations.RunPython(forward, backward)]
