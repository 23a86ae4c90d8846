"""Search over one person's sessions: their titles, prompts and answers.

The words typed are read the way PostgreSQL's ``websearch_to_tsquery`` reads them: words
must all be there, ``"quoted words"`` next to each other, ``or`` between alternatives,
``-word`` must not be there; case does not matter (nor accents, on SQLite, and in the
highlighting). On PostgreSQL the search runs on the stored ``search_vector`` columns and
their GIN indexes, on SQLite on the FTS5 table ``playground_search`` (both made by
migration 0012).

What is ranked is bounded, so that a word found everywhere costs what a rare one does: on
PostgreSQL each kind of text (titles, prompts, answers) is read through its GIN index up to
CANDIDATES matches, and a kind with more holds a common word, so every match in the
person's WINDOW newest sessions is added; on SQLite, the newest CANDIDATES matching texts
(FTS5 reads its index backwards). For all but the commonest words that is every match. A
session ranks by its best text (ts_rank or bm25; a title counts double), then by how many
of its texts match.

A quoted phrase on PostgreSQL: its index keeps no word positions, so it can only find the
texts holding the phrase's words, and each must be read to see whether they are next to
each other. So the index finds up to PHRASE_CANDIDATES texts of each kind holding the words
(with the rest of the query, negations aside), only those are checked for the phrase, and
when a kind has more, every text of the WINDOW newest sessions is checked too. A phrase of
words seldom found together is then found wherever it is; one of words found together in
more texts than that, in the texts checked and in the newest sessions, not in every older
one. Whatever is found holds the phrase (and all the rest of the query).

Snippets are built here as pieces of plain text, each marked or not; the ``marked``
template filter escapes every piece and adds only its own ``<mark>`` tags, so no text ever
becomes markup.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import OperationalError, connection, transaction

from playground.models import Response, Session, Turn

CANDIDATES = 200  # matching texts of each kind ranked
PHRASE_CANDIDATES = 500  # texts of each kind holding a phrase's words, checked for it
WINDOW = 100  # the newest sessions searched in full for a common word (PostgreSQL)
TIME_LIMIT_MS = 3000  # then PostgreSQL gives up (a safety net: nothing measured comes near)
RESULTS = 25  # sessions shown
SNIPPET_WORDS = 28
BEFORE_HIT = 8  # words of the snippet before the first one matched

TITLE, PROMPT, ANSWER = 0, 1, 2
WORD = re.compile(r"[^\W_]+")  # what both databases count as a word: letters and digits
SPACES = re.compile(r"\s+")
CHUNK = re.compile(r'(-?)"([^"]*)"?|(\S+)')

NOTHING_TO_SEARCH = "Type a word to search for."
TOO_LONG = "Search for at most 200 characters."
TOO_SLOW = "That search took too long; try rarer words, or fewer words in quotes."


def fold(word: str) -> str:
    """A word as the indexes compare it: lower case, without accents."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


Phrase = tuple[str, ...]


@dataclass(frozen=True)
class Query:
    """What was typed, read as alternatives (``or``), each of words or phrases that must be
    there and ones that must not."""

    text: str
    alternatives: tuple[tuple[tuple[Phrase, ...], tuple[Phrase, ...]], ...]

    @property
    def terms(self) -> frozenset[str]:
        """The words to highlight: those that must be there."""
        return frozenset(w for wanted, _ in self.alternatives for p in wanted for w in p)

    def fts5(self) -> str:
        """The query in FTS5's syntax (every word quoted, so nothing typed is an operator)."""

        def phrase(words: Phrase) -> str:
            return '"' + " ".join(w.replace('"', '""') for w in words) + '"'

        groups = []
        for wanted, unwanted in self.alternatives:
            group = "(" + " AND ".join(phrase(p) for p in wanted) + ")"
            groups.append("(" + group + "".join(f" NOT {phrase(p)}" for p in unwanted) + ")")
        return " OR ".join(groups)


def parse(text: str) -> Query:
    """``text`` as a query; no alternative without a word that must be there."""
    alternatives: list[tuple[tuple[Phrase, ...], tuple[Phrase, ...]]] = []
    wanted: list[Phrase] = []
    unwanted: list[Phrase] = []

    def close() -> None:
        if wanted:
            alternatives.append((tuple(wanted), tuple(unwanted)))
        wanted.clear()
        unwanted.clear()

    for match in CHUNK.finditer(text):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None:
            if bare.lower() == "or":
                close()
                continue
            negated, quoted = ("-", bare[1:]) if bare.startswith("-") else ("", bare)
        words = tuple(fold(w) for w in WORD.findall(quoted or ""))
        if words:
            (unwanted if negated else wanted).append(words)
    close()
    return Query(text.strip(), tuple(alternatives))


Piece = tuple[str, bool]  # text, and whether it is a word searched for


@dataclass
class Result:
    session_id: int
    title: list[Piece]
    snippet: list[Piece]
    updated_at: datetime
    pinned: bool


# The query is repeated rather than shared through a CTE: a constant lets the planner
# estimate how many rows match.
_Q = "websearch_to_tsquery('simple', %(q)s)"
_MINE = "s.owner_id = %(owner)s AND s.deleted_at IS NULL"
POSTGRES_MATCHES = f"""
    (SELECT 0, s.id, s.id, ts_rank(s.search_vector, {_Q}) FROM playground_session s
     WHERE s.search_vector @@ {_Q} AND {_MINE} LIMIT %(n)s)
    UNION ALL
    (SELECT 1, t.id, t.session_id, ts_rank(t.search_vector, {_Q}) FROM playground_turn t
     JOIN playground_session s ON s.id = t.session_id
     WHERE t.search_vector @@ {_Q} AND {_MINE} LIMIT %(n)s)
    UNION ALL
    (SELECT 2, r.id, t.session_id, ts_rank(r.search_vector, {_Q}) FROM playground_response r
     JOIN playground_turn t ON t.id = r.turn_id JOIN playground_session s ON s.id = t.session_id
     WHERE r.search_vector @@ {_Q} AND {_MINE} LIMIT %(n)s)
"""  # noqa: S608 (only constants are formatted into it)
# A phrase: PHRASE_CANDIDATES + 1 texts of each kind holding all of its words (``loose``,
# found through the GIN index without reading a text, as for words); then the phrase itself
# (``<->``: it needs the word positions that the index does not keep, so each text is read)
# is checked on those only. A candidate without it comes back with no rank, so that the
# caller can tell whether a kind had more candidates than were checked.
_LOOSE = "%(loose)s::tsquery"
POSTGRES_PHRASE_MATCHES = f"""
    (SELECT 0, c.id, c.id, CASE WHEN c.v @@ {_Q} THEN ts_rank(c.v, {_Q}) END
     FROM (SELECT s.id, s.search_vector v FROM playground_session s
           WHERE s.search_vector @@ {_LOOSE} AND {_MINE} LIMIT %(n)s) c)
    UNION ALL
    (SELECT 1, c.id, c.session_id, CASE WHEN c.v @@ {_Q} THEN ts_rank(c.v, {_Q}) END
     FROM (SELECT t.id, t.session_id, t.search_vector v FROM playground_turn t
           JOIN playground_session s ON s.id = t.session_id
           WHERE t.search_vector @@ {_LOOSE} AND {_MINE} LIMIT %(n)s) c)
    UNION ALL
    (SELECT 2, c.id, c.session_id, CASE WHEN c.v @@ {_Q} THEN ts_rank(c.v, {_Q}) END
     FROM (SELECT r.id, t.session_id, r.search_vector v FROM playground_response r
           JOIN playground_turn t ON t.id = r.turn_id
           JOIN playground_session s ON s.id = t.session_id
           WHERE r.search_vector @@ {_LOOSE} AND {_MINE} LIMIT %(n)s) c)
"""  # noqa: S608 (only constants are formatted into it)
# The query as the index can search it (negations left out), its phrases' words AND-ed:
# PostgreSQL writes an operator between spaces, and a lexeme never holds a space.
PHRASE_OPERATOR = re.compile(r" <(?:-|\d+)> ")
# A common word, or a phrase of words often found together: every match in the person's
# newest sessions, by the sessions' own indexes.
_NEWEST = f"""SELECT id FROM playground_session s WHERE {_MINE}
    ORDER BY s.pinned DESC, s.updated_at DESC LIMIT %(window)s"""  # noqa: S608
POSTGRES_RECENT_MATCHES = f"""
    WITH newest AS MATERIALIZED ({_NEWEST})
    (SELECT 0, s.id, s.id, ts_rank(s.search_vector, {_Q}) FROM playground_session s
     WHERE s.id IN (SELECT id FROM newest) AND s.search_vector @@ {_Q})
    UNION ALL
    (SELECT 1, t.id, t.session_id, ts_rank(t.search_vector, {_Q}) FROM playground_turn t
     WHERE t.session_id IN (SELECT id FROM newest) AND t.search_vector @@ {_Q})
    UNION ALL
    (SELECT 2, r.id, t.session_id, ts_rank(r.search_vector, {_Q}) FROM playground_response r
     JOIN playground_turn t ON t.id = r.turn_id
     WHERE t.session_id IN (SELECT id FROM newest) AND r.search_vector @@ {_Q})
"""  # noqa: S608 (only constants are formatted into it)


# The newest matching texts of the person's sessions (FTS5 walks its index backwards).
SQLITE_MATCHES = """
    SELECT f.rowid, f.session_id, bm25(playground_search) FROM playground_search f
    WHERE playground_search MATCH %s AND f.session_id IN (
        SELECT id FROM playground_session WHERE owner_id = %s AND deleted_at IS NULL)
    ORDER BY f.rowid DESC LIMIT %s
"""


@dataclass
class _Session:
    best: float = 0.0
    matches: int = 0
    newest: int = 0
    text: tuple[int, int] | None = None  # (kind, id) of its best prompt or answer
    text_score: float = field(default=-1.0)


class TooSlow(Exception):
    """The database gave up on the search (PostgreSQL, after TIME_LIMIT_MS)."""

    def __str__(self) -> str:
        return TOO_SLOW


def search(owner_id: int, query: Query, limit: int = RESULTS) -> list[Result]:
    """The person's sessions that match, best first (deleted ones never)."""
    if not query.alternatives:
        return []
    if connection.vendor == "postgresql":
        try:
            hits = _postgres_hits(owner_id, query.text)
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) == "57014":  # query_canceled
                raise TooSlow from error
            raise
    else:
        hits = _sqlite_hits(owner_id, query.fts5())
    ranked = _rank(hits)[:limit]
    return _results(owner_id, ranked, query.terms)


def _rank(hits: Iterable[tuple[int, int, int, float]]) -> list[tuple[int, _Session]]:
    """Sessions by their best text (a title counts double), then by how many texts match."""
    sessions: dict[int, _Session] = {}
    for kind, doc, session_id, score in hits:
        entry = sessions.setdefault(session_id, _Session())
        weighted = score * 2 if kind == TITLE else score
        entry.best = max(entry.best, weighted)
        entry.matches += 1
        entry.newest = max(entry.newest, doc)
        if kind != TITLE and score > entry.text_score:
            entry.text, entry.text_score = (kind, doc), score
    return sorted(sessions.items(), key=lambda item: (-item[1].best, -item[1].matches, -item[0]))


def _postgres_hits(owner_id: int, text: str) -> list[tuple[int, int, int, float]]:
    params: dict[str, str | int] = {
        "q": text,
        "owner": owner_id,
        "n": CANDIDATES + 1,
        "window": WINDOW,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # The texts are read through their GIN indexes, never by a scan of the table (the
        # planner takes a phrase of two common words for a common phrase), and each kind
        # stops at CANDIDATES + 1 matches: more, and the word is a common one.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"SET LOCAL statement_timeout = {TIME_LIMIT_MS}")
        cursor.execute("SELECT querytree(websearch_to_tsquery('simple', %s))", [text])
        indexed: str = cursor.fetchone()[0]
        if PHRASE_OPERATOR.search(indexed):
            params["loose"] = PHRASE_OPERATOR.sub(" & ", indexed)
            hits, complete = _postgres_phrase_hits(cursor, params)
        else:
            cursor.execute(POSTGRES_MATCHES, params)
            hits = [(k, d, s, float(r)) for k, d, s, r in cursor.fetchall()]
            counts = Counter(kind for kind, _, _, _ in hits)
            complete = max(counts.values(), default=0) <= CANDIDATES
        if complete:
            return hits
        cursor.execute("SET LOCAL enable_seqscan = on")
        cursor.execute("SET LOCAL enable_indexscan = on")
        cursor.execute(POSTGRES_RECENT_MATCHES, params)
        recent = [(k, d, s, float(r)) for k, d, s, r in cursor.fetchall()]
        return list(dict.fromkeys(hits + recent))  # a text found by both counts once


def _postgres_phrase_hits(
    cursor: Any, params: dict[str, str | int]
) -> tuple[list[tuple[int, int, int, float]], bool]:
    """The texts among PHRASE_CANDIDATES + 1 of each kind holding the words of the query's
    phrases that hold the phrases too, and whether those were all the texts with the words."""
    params["n"] = PHRASE_CANDIDATES + 1
    # Only through the GIN indexes: an index scan filtered by the words would read every
    # text it passes over, and one that seldom holds both words could pass over them all.
    cursor.execute("SET LOCAL enable_indexscan = off")
    cursor.execute(POSTGRES_PHRASE_MATCHES, params)
    rows = cursor.fetchall()
    counts = Counter(kind for kind, _, _, _ in rows)
    hits = [(k, d, s, float(r)) for k, d, s, r in rows if r is not None]
    return hits, max(counts.values(), default=0) <= PHRASE_CANDIDATES


def _sqlite_hits(owner_id: int, match: str) -> list[tuple[int, int, int, float]]:
    with connection.cursor() as cursor:
        cursor.execute(SQLITE_MATCHES, [match, owner_id, CANDIDATES])
        return sqlite_hits(cursor.fetchall())


def sqlite_hits(rows: Iterable[tuple[int, int, float]]) -> list[tuple[int, int, int, float]]:
    """(kind, id, session, score) of SQLITE_MATCHES' rows: a rowid is the source's id * 4 +
    its kind, and bm25 is lower for a better match."""
    return [(rowid % 4, rowid // 4, session_id, -score) for rowid, session_id, score in rows]


def _results(
    owner_id: int, ranked: list[tuple[int, _Session]], terms: frozenset[str]
) -> list[Result]:
    ids = [session_id for session_id, _ in ranked]
    sessions = {
        s.pk: s
        for s in Session.objects.filter(
            pk__in=ids, owner_id=owner_id, deleted_at__isnull=True
        ).only("pk", "title", "updated_at", "pinned")
    }
    prompts = [e.text[1] for _, e in ranked if e.text and e.text[0] == PROMPT]
    answers = [e.text[1] for _, e in ranked if e.text and e.text[0] == ANSWER]
    texts = {
        (PROMPT, pk): t for pk, t in Turn.objects.filter(pk__in=prompts).values_list("pk", "prompt")
    }
    texts |= {
        (ANSWER, pk): t
        for pk, t in Response.objects.filter(pk__in=answers).values_list("pk", "text")
    }
    results = []
    for session_id, entry in ranked:
        session = sessions.get(session_id)
        if session is None:  # deleted since the search read it
            continue
        text = texts.get(entry.text) if entry.text else None
        results.append(
            Result(
                session_id=session_id,
                title=highlight(str(session), terms),
                snippet=snippet(text, terms) if text else [],
                updated_at=session.updated_at,
                pinned=session.pinned,
            )
        )
    return results


def highlight(text: str, terms: frozenset[str]) -> list[Piece]:
    """All of ``text`` in pieces, the words searched for marked."""
    return _pieces(text, 0, len(text), terms)


def snippet(text: str, terms: frozenset[str], words: int = SNIPPET_WORDS) -> list[Piece]:
    """About ``words`` words of ``text`` from a little before the first word searched for
    (the start when none is found), in pieces; "…" where text was left out."""
    before: deque[re.Match[str]] = deque(maxlen=BEFORE_HIT)
    first: re.Match[str] | None = None  # the snippet's first word, once a hit is found
    last: re.Match[str] | None = None
    skipped = False  # words before the snippet's first one
    taken = 0
    for match in WORD.finditer(text):
        if first is None:
            if fold(match.group()) not in terms:
                skipped = skipped or len(before) == BEFORE_HIT
                before.append(match)
                continue
            first = before[0] if before else match
            taken = len(before)
        taken += 1
        last = match
        if taken >= words:
            break
    if first is None:  # nothing to mark (e.g. an answer matched by an accent-folded word)
        return snippet_start(text, words)
    start = first.start() if skipped else 0
    stop = len(text) if last is None or taken < words else last.end()
    pieces = _pieces(text, start, stop, terms)
    if start > 0:
        pieces.insert(0, ("… ", False))
    if stop < len(text):
        pieces.append((" …", False))
    return pieces


def snippet_start(text: str, words: int = SNIPPET_WORDS) -> list[Piece]:
    """The first ``words`` words of ``text``."""
    stop = len(text)
    for number, match in enumerate(WORD.finditer(text), start=1):
        if number == words:
            stop = match.end()
            break
    pieces = _pieces(text, 0, stop, frozenset())
    return [*pieces, (" …", False)] if stop < len(text) else pieces


def _pieces(text: str, start: int, stop: int, terms: frozenset[str]) -> list[Piece]:
    pieces: list[Piece] = []
    plain_from = start
    for match in WORD.finditer(text, start, stop):
        if fold(match.group()) in terms:
            if match.start() > plain_from:
                pieces.append((_spaces(text[plain_from : match.start()]), False))
            pieces.append((match.group(), True))
            plain_from = match.end()
    if stop > plain_from:
        pieces.append((_spaces(text[plain_from:stop]), False))
    return pieces


def _spaces(text: str) -> str:
    """Line breaks and runs of spaces as one space: a snippet is one line."""
    return SPACES.sub(" ", text)
