"""SQLite's search index on its own, whatever database the run uses: migration 0012's FTS5
table and triggers on an in-memory sqlite3 database with the three tables' columns they
read, queried by the SQL and the query text the search sends. Also how typed words become
a query, and the snippets."""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Iterator

import pytest
from django.db import connection

from playground import session_search
from playground.session_search import ANSWER, PROMPT, TITLE, parse, snippet

migration = importlib.import_module("playground.migrations.0012_search")

TABLES = [
    "CREATE TABLE playground_session (id INTEGER PRIMARY KEY, owner_id INTEGER, title TEXT,"
    " deleted_at TEXT NULL)",
    "CREATE TABLE playground_turn (id INTEGER PRIMARY KEY, session_id INTEGER, prompt TEXT)",
    "CREATE TABLE playground_response (id INTEGER PRIMARY KEY, turn_id INTEGER, text TEXT)",
]


@pytest.fixture
def fts() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    for sql in TABLES:
        conn.execute(sql)
    # Rows from before the migration are indexed by it too.
    conn.execute("INSERT INTO playground_session VALUES (1, 10, 'Old session', NULL)")
    conn.execute("INSERT INTO playground_turn VALUES (1, 1, 'An old prompt about otters')")
    for sql in migration.SQLITE_FORWARD:
        conn.execute(sql)
    yield conn
    conn.close()


def hits(conn: sqlite3.Connection, owner: int, q: str) -> list[tuple[int, int, int]]:
    """(kind, id, session) of what the search finds, as session_search reads it."""
    sql = session_search.SQLITE_MATCHES.replace("%s", "?")
    rows = conn.execute(sql, [parse(q).fts5(), owner, 100]).fetchall()
    return sorted((kind, doc, s) for kind, doc, s, _ in session_search.sqlite_hits(rows))


def test_the_triggers_keep_the_index_true(fts: sqlite3.Connection) -> None:
    assert hits(fts, 10, "otters") == [(PROMPT, 1, 1)]
    fts.execute("INSERT INTO playground_session VALUES (2, 10, 'Pancakes', NULL)")
    fts.execute("INSERT INTO playground_turn VALUES (2, 2, 'How thick?')")
    fts.execute("INSERT INTO playground_response VALUES (5, 2, '')")  # pending: nothing yet
    assert hits(fts, 10, "pancakes") == [(TITLE, 2, 2)]

    fts.execute("UPDATE playground_response SET text = 'Thin, like crêpes.' WHERE id = 5")
    assert hits(fts, 10, "crepes") == [(ANSWER, 5, 2)]
    assert hits(fts, 10, "THIN") == [(ANSWER, 5, 2)]

    fts.execute("UPDATE playground_session SET title = 'Breakfast' WHERE id = 2")
    assert hits(fts, 10, "pancakes") == []
    assert hits(fts, 10, "breakfast") == [(TITLE, 2, 2)]

    fts.execute("UPDATE playground_session SET title = '' WHERE id = 2")
    assert hits(fts, 10, "breakfast") == []

    fts.execute("DELETE FROM playground_response WHERE id = 5")
    fts.execute("DELETE FROM playground_turn WHERE id = 2")
    fts.execute("DELETE FROM playground_session WHERE id = 2")
    assert hits(fts, 10, "crepes OR thick OR breakfast") == []
    assert fts.execute("SELECT count(*) FROM playground_search").fetchone() == (2,)


def test_only_the_owners_live_sessions(fts: sqlite3.Connection) -> None:
    fts.execute("INSERT INTO playground_session VALUES (2, 11, 'Otters of someone else', NULL)")
    fts.execute("INSERT INTO playground_session VALUES (3, 10, 'Deleted otters', '2026-01-01')")
    assert hits(fts, 10, "otters") == [(PROMPT, 1, 1)]
    assert hits(fts, 11, "otters") == [(TITLE, 2, 2)]


def test_a_phrase_and_what_must_not_be_there(fts: sqlite3.Connection) -> None:
    fts.execute("INSERT INTO playground_turn VALUES (2, 1, 'Otters about old boats')")
    assert hits(fts, 10, '"old prompt"') == [(PROMPT, 1, 1)]
    assert hits(fts, 10, '"prompt old"') == []
    assert hits(fts, 10, "otters -boats") == [(PROMPT, 1, 1)]
    assert hits(fts, 10, "boats or prompt") == [(PROMPT, 1, 1), (PROMPT, 2, 1)]


@pytest.mark.parametrize(
    "typed",
    ['"', 'a"b', "((x", "NEAR(a b)", "x*", "body:x", "^x", "AND", "NOT x", "a + b", "{x}", "-"],
)
def test_nothing_typed_is_an_fts5_error(fts: sqlite3.Connection, typed: str) -> None:
    query = parse(typed)
    if query.alternatives:
        hits(fts, 10, typed)  # no sqlite3.OperationalError


def test_the_backward_migration_removes_it_all(fts: sqlite3.Connection) -> None:
    for sql in migration.SQLITE_BACKWARD:
        fts.execute(sql)
    left = fts.execute("SELECT name FROM sqlite_master WHERE name LIKE 'playground_search%'")
    assert left.fetchall() == []
    fts.execute("INSERT INTO playground_session VALUES (2, 10, 'Still writable', NULL)")


@pytest.mark.django_db
def test_the_run_database_has_the_index() -> None:
    """On SQLite, the triggers are there after every migration (a later one that rebuilds
    a table would drop them); on PostgreSQL, the vectors and their GIN indexes."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            triggers = {name for (name,) in cursor.fetchall()}
            assert triggers >= {
                f"playground_search_{table}_{event}"
                for table in ("session", "turn", "response")
                for event in ("ai", "au", "ad")
            }
        else:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%%USING gin (search_vector)'"
            )
            assert {name for (name,) in cursor.fetchall()} == {
                "session_title_search",
                "turn_prompt_search",
                "response_text_search",
            }


# ------------------------------------------------------------------ words typed


def test_how_words_become_a_query() -> None:
    query = parse('Tomato "basil SOUP" -garlic or Risotto')
    assert query.alternatives == (
        ((("tomato",), ("basil", "soup")), (("garlic",),)),
        ((("risotto",),), ()),
    )
    assert query.fts5() == '(("tomato" AND "basil soup") NOT "garlic") OR (("risotto"))'
    assert query.terms == {"tomato", "basil", "soup", "risotto"}


def test_punctuation_inside_a_word_makes_a_phrase() -> None:
    assert parse("e-mail").fts5() == '(("e mail"))'
    assert parse("don't").terms == {"don", "t"}
    assert parse("?! -- ...").alternatives == ()


def test_a_snippet_of_a_short_text_is_all_of_it() -> None:
    assert snippet("Tomato soup, with basil.", frozenset({"basil"})) == [
        ("Tomato soup, with ", False),
        ("basil", True),
        (".", False),
    ]


def test_a_snippet_is_one_line() -> None:
    pieces = snippet("First line\n\n  second   line with cake", frozenset({"cake"}))
    assert "".join(text for text, _ in pieces) == "First line second line with cake"


def test_a_snippet_without_a_marked_word_is_the_start() -> None:
    text = " ".join(f"w{n}" for n in range(50))
    pieces = snippet(text, frozenset({"absent"}))
    assert "".join(t for t, _ in pieces) == " ".join(f"w{n}" for n in range(28)) + " …"
