"""Search in the sidebar, on whichever database the run uses (PostgreSQL in `make test`,
SQLite with `services.py run --no-postgres`): titles, prompts and answers of the person's
own sessions that are not deleted, case and accents aside, with the words highlighted in
<mark> and everything else escaped."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from playground import session_search
from playground.models import Response, Session, Status
from tests.playground.helpers import make_turn

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def conversation(owner: Any, title: str, prompt: str, answers: list[str]) -> Session:
    """A finished turn: one pane per answer."""
    turn = make_turn(owner, [("echo", {})] * len(answers), prompt)
    for response, answer in zip(turn.responses.order_by("pane__position"), answers, strict=True):
        # As the worker writes an answer when it ends: an UPDATE of the row.
        Response.objects.filter(pk=response.pk).update(status=Status.DONE, text=answer)
    Session.objects.filter(pk=turn.session_id).update(title=title)
    return Session.objects.get(pk=turn.session_id)


def search(client: Any, q: str) -> str:
    response = client.get(reverse("session_search"), {"q": q}, **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def found(page: str) -> list[str]:
    """The titles of the results, in order, without their marks."""
    titles = re.findall(
        r'<li class="search-result">.*?<span class="session-title">(.*?)</span>', page, re.DOTALL
    )
    return [html.unescape(re.sub(r"<[^>]+>", "", t)) for t in titles]


@pytest.fixture
def library(owner: Any, outsider: Any) -> dict[str, Session]:
    return {
        "soup": conversation(
            owner,
            "Dinner ideas",
            "What could I cook tonight?",
            ["A tomato soup with basil is quick.", "Try a risotto."],
        ),
        "trains": conversation(
            owner,
            "Travel plans",
            "How do I get from Paris to Lyon?",
            ["The TGV takes two hours.", "A night bus is cheaper."],
        ),
        "theirs": conversation(
            outsider,
            "Mallory's soup",
            "Tomato soup recipe please",
            ["Tomato soup: tomatoes, basil, salt."],
        ),
    }


def test_a_word_only_in_an_answer_finds_its_session(
    owner_client: Any, library: dict[str, Session]
) -> None:
    page = search(owner_client, "basil")
    assert found(page) == ["Dinner ideas"]
    assert "A tomato soup with <mark>basil</mark> is quick." in page
    assert f'href="/s/{library["soup"].pk}/"' in page


def test_case_does_not_matter(owner_client: Any, library: dict[str, Session]) -> None:
    assert found(search(owner_client, "RISOTTO")) == ["Dinner ideas"]
    page = search(owner_client, "tgv")
    assert found(page) == ["Travel plans"]
    assert "<mark>TGV</mark>" in page


def test_prompts_and_titles_are_searched_too(
    owner_client: Any, library: dict[str, Session]
) -> None:
    assert found(search(owner_client, "Lyon")) == ["Travel plans"]
    page = search(owner_client, "dinner")
    assert found(page) == ["Dinner ideas"]
    assert '<span class="session-title"><mark>Dinner</mark> ideas</span>' in page


def test_another_persons_session_is_never_found(
    owner_client: Any, library: dict[str, Session]
) -> None:
    page = search(owner_client, "tomatoes")
    assert found(page) == []
    assert "No session of yours matches “tomatoes”." in html.unescape(page)
    assert found(search(owner_client, "tomato")) == ["Dinner ideas"]


def test_a_deleted_session_is_never_found(owner_client: Any, library: dict[str, Session]) -> None:
    Session.objects.filter(pk=library["soup"].pk).update(deleted_at=timezone.now())
    assert found(search(owner_client, "basil")) == []


def test_a_renamed_session_is_found_by_its_new_title(
    owner_client: Any, library: dict[str, Session]
) -> None:
    owner_client.post(
        reverse("session_rename", args=[library["trains"].pk]), {"title": "Weekend in Lyon"}, **HTMX
    )
    assert found(search(owner_client, "weekend")) == ["Weekend in Lyon"]
    assert found(search(owner_client, "travel")) == []


def test_a_purged_session_leaves_nothing_behind(
    owner: Any, owner_client: Any, library: dict[str, Session]
) -> None:
    library["soup"].delete()
    assert found(search(owner_client, "basil")) == []
    if connection.vendor == "sqlite":  # the triggers took its rows out of the FTS table too
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM playground_search WHERE session_id = %s",
                [library["soup"].pk if library["soup"].pk else 0],
            )
            assert cursor.fetchone() == (0,)


def test_the_best_match_comes_first(owner: Any, owner_client: Any) -> None:
    conversation(owner, "Mentions it once", "Anything", ["The harbour is far."])
    conversation(owner, "Harbour lights", "Tell me about the harbour", ["Harbour, harbour."])
    assert found(search(owner_client, "harbour")) == ["Harbour lights", "Mentions it once"]


def test_websearch_syntax(owner_client: Any, library: dict[str, Session]) -> None:
    assert found(search(owner_client, '"night bus"')) == ["Travel plans"]
    assert found(search(owner_client, '"bus night"')) == []
    assert sorted(found(search(owner_client, "risotto or tgv"))) == ["Dinner ideas", "Travel plans"]
    assert found(search(owner_client, "soup -basil")) == []
    assert found(search(owner_client, "quick basil")) == ["Dinner ideas"]
    assert found(search(owner_client, "quick trains")) == []


def test_a_phrase_is_found_only_where_its_words_are_adjacent(owner: Any, owner_client: Any) -> None:
    conversation(owner, "In an answer", "Birds?", ["We saw a red kite over the hill."])
    conversation(owner, "In a prompt", "Is the red kite rare here?", ["Not any more."])
    conversation(owner, "Red kite nests", "Where?", ["In tall trees."])
    conversation(owner, "Words apart", "A red car", ["And a kite, on the beach."])
    conversation(owner, "Turned round", "Kite red", ["Red, the kite was red."])
    page = search(owner_client, '"red kite"')
    assert sorted(found(page)) == ["In a prompt", "In an answer", "Red kite nests"]
    assert "We saw a <mark>red</mark> <mark>kite</mark> over the hill." in page
    assert sorted(found(search(owner_client, '"RED Kite" hill'))) == ["In an answer"]
    assert found(search(owner_client, '"red car kite"')) == []
    apart = ["Turned round", "Words apart"]
    assert sorted(found(search(owner_client, 'kite -"red kite"'))) == apart
    assert sorted(found(search(owner_client, '"kite red" or "red car"'))) == [
        "Turned round",
        "Words apart",
    ]


def test_a_phrase_whose_words_are_everywhere_apart(
    owner: Any, owner_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More texts hold both words than are checked for the phrase (PostgreSQL): those
    checked, and every text of the newest sessions; never a session without it."""
    monkeypatch.setattr(session_search, "PHRASE_CANDIDATES", 3)
    monkeypatch.setattr(session_search, "WINDOW", 2)
    for n in range(8):
        answers = ["A red car, then a kite.", "Kite, then red."]
        conversation(owner, f"Apart {n}", "Something", answers)
    newest = conversation(owner, "Newest", "Anything", ["The red kite again."])
    Session.objects.filter(pk=newest.pk).update(updated_at=timezone.now())
    assert found(search(owner_client, '"red kite"')) == ["Newest"]
    assert found(search(owner_client, '"kite red"')) == []
    assert found(search(owner_client, '"car kite"')) == []
    common = found(search(owner_client, '"red car"'))  # in every one but the newest
    assert common and all(title.startswith("Apart ") for title in common)


@pytest.mark.parametrize("q", ['"', "((", "-", "NEAR(a b)", "a*", "col:x", "'; DROP TABLE x; --"])
def test_odd_input_is_never_an_error(
    owner_client: Any, library: dict[str, Session], q: str
) -> None:
    search(owner_client, q)  # a 200, whatever the characters


def test_nothing_to_search_for_is_a_sentence(owner_client: Any) -> None:
    assert session_search.NOTHING_TO_SEARCH in search(owner_client, "-only -negatives")
    assert session_search.NOTHING_TO_SEARCH in search(owner_client, "?!")
    assert session_search.TOO_LONG in search(owner_client, "x" * 201)


def test_an_empty_search_gives_the_list_back(
    owner_client: Any, library: dict[str, Session]
) -> None:
    page = search(owner_client, "  ")
    assert 'class="session-item' in page
    assert "Dinner ideas" in page and "Travel plans" in page


def test_an_answer_is_escaped_and_only_our_marks_are_markup(owner: Any, owner_client: Any) -> None:
    conversation(
        owner,
        "<b>Bold</b> title",
        "Show me an injection",
        ['Here: <script>alert("pwned")</script> and <mark onclick=x>fake</mark> injection.'],
    )
    page = search(owner_client, "injection fake")
    assert found(page) == ["<b>Bold</b> title"]
    results = page[page.index('<li class="search-result">') :]
    assert "<script" not in results
    assert "<b>" not in results
    assert "… script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; and " in results
    assert "&lt;mark onclick=x&gt;<mark>fake</mark>&lt;/mark&gt; <mark>injection</mark>." in results
    assert set(re.findall(r"<(/?\w+)", results)) <= {"li", "/li", "a", "/a", "span", "/span"} | {
        "mark",
        "/mark",
        "time",
        "/time",
    }


def test_a_long_answer_gives_a_snippet_around_the_word(owner: Any, owner_client: Any) -> None:
    words = [f"w{n}" for n in range(400)]
    words[300] = "needle"
    conversation(owner, "Haystack", "Find it", [" ".join(words)])
    page = search(owner_client, "needle")
    snippet = re.search(r'<span class="snippet">(.*?)</span>', page, re.DOTALL)
    assert snippet is not None
    assert snippet.group(1) == (
        "… w292 w293 w294 w295 w296 w297 w298 w299 <mark>needle</mark> w301 w302 w303 w304"
        " w305 w306 w307 w308 w309 w310 w311 w312 w313 w314 w315 w316 w317 w318 w319 …"
    )


def test_a_word_is_marked_whatever_its_accents(owner: Any, owner_client: Any) -> None:
    """(SQLite's index ignores accents too; PostgreSQL's 'simple' configuration keeps them,
    so there the answer's "cafe" is what matches.)"""
    conversation(owner, "Café talk", "Where is the café?", ["Next to the cafe on the square."])
    page = search(owner_client, "cafe")
    assert found(page) == ["Café talk"]
    assert "<mark>Café</mark> talk" in page
