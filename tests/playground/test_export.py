"""Exports of a session: the owner downloads Markdown and JSON; nobody else gets either; the
JSON holds every field (and passes docs/session-export.schema.json); neither holds a key, an
email or a credential's id; a session still answering exports what has arrived."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from playground.credentials import model_base_url, seal_parts
from playground.export import SCHEMA, export_response
from playground.models import Credential, Pane, Response, Session, Status, Turn
from tests.playground.helpers import make_turn, responses_of
from tests.playground.team_personas import browser, research_team

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "session-export.schema.json"
SECRET = "sk-export-test-0123456789abcdef"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 92  # 100 bytes
CREDENTIAL_ID = 987_654
PANES = [
    ("openai:gpt-4.1-mini", {"temperature": 0.7, "max_tokens": 300}),
    ("echo", {}),
    ("anthropic:claude-haiku-4-5", {"temperature": 0.2, "stop": ["END", "\n\n"]}),
]


def work_key(owner: Any) -> Credential:
    """The owner's saved key 'work', with an id no other number in an export has."""
    from playground.catalog import catalog

    key = Credential(
        pk=CREDENTIAL_ID,
        scope="user",
        user=owner,
        provider="openai",
        label="work",
        base_url=model_base_url(catalog()["openai:gpt-4.1-mini"]),
        added_by=owner,
    )
    seal_parts(key, {"api_key": SECRET})
    key.save()
    return key


def finished(response: Response, n: int, key: Credential | None = None, **fields: Any) -> None:
    """Everything a finished answer holds, different for each ``n``."""
    now = timezone.now()
    values: dict[str, Any] = {
        "status": Status.DONE,
        "text": f"Answer {n}: **bold** and `code`",
        "finish_reason": "stop",
        "input_tokens": 100 + n,
        "output_tokens": 20 + n,
        "reasoning_tokens": None,
        "usage_estimated": False,
        "ttft_ms": 200 + n,
        "waited_ms": 0,
        "total_ms": 1000 + n,
        "tokens_per_s": 25.5 + n,
        "cost": Decimal("0.00012345") * (n + 1),
        "cost_currency": "USD",
        "started_at": now - timedelta(seconds=2),
        "finished_at": now,
        "key_scope": "env",
        "key_label": "site environment",
    }
    if key is not None:
        values.update(credential=key, key_scope="user", key_label="your key 'work'")
    values.update(fields)
    for name, value in values.items():
        setattr(response, name, value)
    response.save()


def rich_session(owner: Any) -> tuple[Session, list[Turn]]:
    """Two turns of three panes: reasoning, tool calls, an error, an estimated usage, a
    chosen and an excluded answer, images and tools, a replaced answer, and a pane removed
    after the first turn."""
    key = work_key(owner)
    first = make_turn(owner, PANES, "Compare these <b>two</b> ideas", system_prompt="Be brief.")
    session = first.session
    session.title = 'Ideas: "A" / B?'
    session.system_prompt = "Be brief."
    session.save()
    first.tools = [{"name": "get_weather", "description": "Weather", "parameters": {}}]
    first.images = [
        {"url": "https://img.example/cat.png"},
        {"data": base64.b64encode(PNG).decode(), "mime_type": "image/png"},
    ]
    first.save()
    a, b, c = responses_of(first)
    finished(
        a,
        1,
        key,
        reasoning="Thinking ```carefully```",
        reasoning_tokens=7,
        params={"temperature": 0.7, "max_tokens": 300},
    )
    finished(
        b,
        2,
        tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}],
        finish_reason="tool_calls",
        usage_estimated=True,
        waited_ms=1500,
        cost=None,
        cost_currency="",
        key_scope="",
        key_label="",
        excluded=True,
    )
    finished(c, 3, status=Status.ERROR, text="", error="The model refused: too long.")
    # The owner chose the second answer of the first turn, and asked the third pane again.
    first.chosen = b
    first.save()
    c.replaced = True
    c.save()
    again = Response.objects.create(
        turn=first, pane=c.pane, model_key=c.model_key, display_name=c.display_name, params=c.params
    )
    finished(again, 4, text="Second try")
    # The third pane was removed; its answers stay on record.
    Pane.objects.filter(pk=c.pane_id).update(removed=True)
    second = make_turn(owner, PANES[:2], "And now?", session=session, system_prompt="Be brief.")
    for n, r in enumerate(responses_of(second), start=5):
        finished(r, n)
    return session, [first, second]


def download(client: Any, session: Session, fmt: str) -> Any:
    return client.get(reverse(f"export_{fmt}", args=[session.pk]))


def test_the_owner_downloads_markdown_one_section_per_turn_panes_in_order(
    owner: Any, owner_client: Any
) -> None:
    session, _ = rich_session(owner)

    answer = download(owner_client, session, "md")

    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/markdown; charset=utf-8"
    assert answer["Content-Disposition"] == 'attachment; filename="ideas-a-b.md"'
    text = answer.content.decode()
    assert text.startswith('# Ideas: "A" / B?\n')
    turns = re.split(r"^## ", text, flags=re.M)[1:]
    assert [t.splitlines()[0] for t in turns] == ["Turn 1", "Turn 2"]
    first, second = turns
    # Panes in order, each once; the replaced answer is left out, its replacement shown.
    assert re.findall(r"^### (.*)$", first, flags=re.M) == [
        "Pane 1: OpenAI · GPT-4.1 mini",
        "Pane 2: Echo — chosen — excluded from context",
        "Pane 3: Anthropic · Claude Haiku 4.5",
    ]
    assert re.findall(r"^### (.*)$", second, flags=re.M) == [
        "Pane 1: OpenAI · GPT-4.1 mini",
        "Pane 2: Echo",
    ]
    assert "> Compare these <b>two</b> ideas" in first
    assert "Tools offered: `get_weather`" in first
    assert "Images: <https://img.example/cat.png>; image/png, 100 bytes" in first
    pane1 = first.split("### Pane 2")[0]
    for line in (
        "- Model: `openai:gpt-4.1-mini`",
        "- Parameters: max tokens 300 · temperature 0.7",
        "- Status: Done, finish: stop",
        "- Tokens: 101 in · 21 out · 7 reasoning tokens",
        "- Cost: $0.0002 (0.00024690 USD)",
        "- Timings: TTFT 0.20 s · total 1.00 s · 26.5 tok/s",
        "- Key: your key 'work'",
    ):
        assert line in pane1.splitlines(), pane1
    # Reasoning in a block of its own, which the backticks in it cannot close.
    assert "#### Reasoning\n\n````text\nThinking ```carefully```\n````" in pane1
    assert pane1.rstrip().endswith("#### Answer\n\nAnswer 1: **bold** and `code`")
    pane2 = first.split("### Pane 2")[1].split("### Pane 3")[0]
    call = '`get_weather` (id `call_1`):\n\n```json\n{\n  "city": "Oslo"\n}\n```'
    assert f"#### Tool calls\n\n{call}" in pane2
    assert "- Tokens: 102 in · 22 out tokens (estimated)" in pane2
    assert "waited 1.50 s" in pane2 and "- Cost" not in pane2 and "- Key" not in pane2
    pane3 = first.split("### Pane 3")[1]
    assert "Second try" in pane3 and "too long" not in text  # the replaced answer's error
    assert '- Parameters: stop ["END", "\\n\\n"] · temperature 0.2' in pane3


def test_the_owner_downloads_json_that_holds_every_field_and_fits_its_schema(
    owner: Any, owner_client: Any
) -> None:
    session, (first, second) = rich_session(owner)

    answer = download(owner_client, session, "json")

    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/json"
    assert answer["Content-Disposition"] == 'attachment; filename="ideas-a-b.json"'
    data = json.loads(answer.content)
    jsonschema.validate(
        data,
        json.loads(SCHEMA_FILE.read_text()),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    assert data["schema"] == SCHEMA
    session.refresh_from_db()
    assert data["session"] == {
        "id": session.pk,
        "title": 'Ideas: "A" / B?',
        "system_prompt": "Be brief.",
        "context_policy": "own",
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "forked_from": None,
        "forked_at_turn": None,
    }
    panes = list(Pane.objects.filter(session=session).order_by("position", "pk"))
    assert data["panes"] == [
        {
            "id": p.pk,
            "position": p.position,
            "model_key": p.model_key,
            "display_name": name,
            "params": p.params,
            "removed": p.position == 2,
        }
        for p, name in zip(
            panes, ["OpenAI · GPT-4.1 mini", "Echo", "Anthropic · Claude Haiku 4.5"], strict=True
        )
    ]
    turn1, turn2 = data["turns"]
    assert {k: turn1[k] for k in ("index", "prompt", "system_prompt", "tools")} == {
        "index": 0,
        "prompt": "Compare these <b>two</b> ideas",
        "system_prompt": "Be brief.",
        "tools": [{"name": "get_weather", "description": "Weather", "parameters": {}}],
    }
    assert turn1["created_at"] == first.created_at.isoformat()
    assert turn1["images"] == [
        {"url": "https://img.example/cat.png"},
        {"mime_type": "image/png", "bytes": 100},
    ]
    # Every response's every field, against its row; the replaced one is not there.
    kept = Response.objects.filter(turn__session=session, replaced=False)
    rows = {r.pk: r for r in kept}
    exported = [r for t in data["turns"] for r in t["responses"]]
    assert sorted(r["id"] for r in exported) == sorted(rows)
    assert [r["pane_id"] for r in turn1["responses"]] == [p.pk for p in panes]
    for item in exported:
        row = rows[item["id"]]
        assert item == {
            "id": row.pk,
            "pane_id": row.pane_id,
            "model_key": row.model_key,
            "display_name": row.display_name,
            "params": row.params,
            "status": row.status,
            "text": row.text,
            "reasoning": row.reasoning,
            "tool_calls": row.tool_calls,
            "finish_reason": row.finish_reason,
            "error": row.error,
            "usage": {
                "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens,
                "reasoning_tokens": row.reasoning_tokens,
                "estimated": row.usage_estimated,
            },
            "cost": None if row.cost is None else str(row.cost),
            "currency": row.cost_currency or None,
            "timings": {
                "ttft_ms": row.ttft_ms,
                "waited_ms": row.waited_ms,
                "total_ms": row.total_ms,
                "elapsed_ms": row.total_ms,
                "tokens_per_s": row.tokens_per_s,
                "started_at": row.started_at.isoformat(),
                "finished_at": row.finished_at.isoformat(),
            },
            "key": {"scope": row.key_scope, "says": row.key_label} if row.key_scope else None,
            "chosen": row.pk == first.chosen_id,
            "excluded": row.excluded,
        }
    # The values that make the comparison above mean something.
    a = turn1["responses"][0]
    assert a["key"] == {"scope": "user", "says": "your key 'work'"}
    assert a["usage"] == {
        "input_tokens": 101,
        "output_tokens": 21,
        "reasoning_tokens": 7,
        "estimated": False,
    }
    assert (a["cost"], a["currency"]) == ("0.00024690", "USD")
    assert turn1["responses"][1]["chosen"] and turn1["responses"][1]["excluded"]
    assert turn1["responses"][2]["text"] == "Second try"
    assert len(turn2["responses"]) == 2


def test_no_key_email_or_credential_id_is_in_either_export(owner: Any, owner_client: Any) -> None:
    session, _ = rich_session(owner)
    key = Credential.objects.get(pk=CREDENTIAL_ID)

    for fmt in ("md", "json"):
        body = download(owner_client, session, fmt).content.decode()
        for secret in (SECRET, key.hint, str(key.uid), str(CREDENTIAL_ID), key.ciphertext):
            assert secret not in body
        assert "alice@example.com" not in body and "@" not in body
        assert "credential" not in body.lower()
        assert "reserved" not in body and "quota" not in body


def test_a_share_link_s_export_says_only_whose_kind_of_key_answered(owner: Any) -> None:
    session, _ = rich_session(owner)
    source = Session.objects.create(owner=owner, title="Before")
    Session.objects.filter(pk=session.pk).update(forked_from=source)
    session.refresh_from_db()

    data = json.loads(export_response(session, "json", for_viewer=True).content)
    text = export_response(session, "md", for_viewer=True).content.decode()

    keys = [r["key"] for t in data["turns"] for r in t["responses"]]
    assert keys[0] == {"scope": "user", "says": "personal key"}
    assert {"scope": "env", "says": "site environment"} in keys
    assert data["session"]["forked_from"] is None
    assert "- Key: personal key" in text
    assert "work" not in text and "work" not in json.dumps(data)
    with pytest.raises(Http404):
        export_response(session, "html", for_viewer=True)


def test_nobody_but_the_owner_gets_an_export(
    owner: Any, outsider: Any, django_user_model: Any, client: Any
) -> None:
    """Teammates and the team's admin included: a session is its owner's alone (they see it
    through a share link, another helper's URL). Anonymous visitors are sent to sign in."""
    team = research_team(django_user_model, owner, outsider)
    session, _ = rich_session(owner)
    for fmt in ("md", "json"):
        url = reverse(f"export_{fmt}", args=[session.pk])
        for person in (team.member, team.admin, team.outsider):
            answer = browser(person).get(url)
            assert answer.status_code == 404
            assert b"Answer 1" not in answer.content
        anonymous = client.get(url)
        assert anonymous.status_code == 302
        assert anonymous["Location"].startswith(reverse("login"))
        assert browser(owner).get(url).status_code == 200
    # A session its owner deleted is missing to them too; a session that does not exist
    # reads the same.
    Session.objects.filter(pk=session.pk).update(deleted_at=timezone.now())
    assert browser(owner).get(reverse("export_json", args=[session.pk])).status_code == 404
    assert browser(owner).get(reverse("export_md", args=[session.pk + 99])).status_code == 404


def test_a_session_still_answering_exports_what_has_arrived(
    owner: Any, owner_client: Any, clean_redis: Any
) -> None:
    turn = make_turn(owner, [("echo", {}), ("echo", {}), ("echo", {})], "Go on")
    streaming, ended_meanwhile, pending = responses_of(turn)
    Response.objects.filter(pk__in=[streaming.pk, ended_meanwhile.pk]).update(
        status=Status.STREAMING
    )
    for response in (streaming, ended_meanwhile):
        log = f"pg:log:{response.pk}"
        clean_redis.xadd(log, {"k": "d", "t": "Echo #1: ", "r": "hm", "n": 3, "ttft": 40}, id="0-1")
        clean_redis.xadd(log, {"k": "d", "t": "half", "n": 4, "ms": 90, "w": 15}, id="0-2")
    # This one ends between the export's read of its row and of its log; whoever ends an
    # answer writes the row first, then the log's end entry.
    clean_redis.xadd(f"pg:log:{ended_meanwhile.pk}", {"k": "e", "st": "done"}, id="0-3")

    def export_after_it_ended(fmt: str) -> Any:
        from playground import export

        real = export._live_logs

        def live_logs(rows: list[Response]) -> Any:
            Response.objects.filter(pk=ended_meanwhile.pk).update(
                status=Status.DONE, text="All of it"
            )
            return real(rows)

        export._live_logs = live_logs
        try:
            return download(owner_client, turn.session, fmt)
        finally:
            export._live_logs = real
            Response.objects.filter(pk=ended_meanwhile.pk).update(status=Status.STREAMING)

    data = json.loads(export_after_it_ended("json").content)
    live, ended, queued = data["turns"][0]["responses"]
    assert (live["status"], live["text"], live["reasoning"]) == ("streaming", "Echo #1: half", "hm")
    assert live["usage"]["output_tokens"] == 4 and live["usage"]["estimated"] is True
    assert live["timings"] == {
        "ttft_ms": 40,
        "waited_ms": 15,
        "total_ms": None,
        "elapsed_ms": 90,
        "tokens_per_s": None,
        "started_at": None,
        "finished_at": None,
    }
    assert (ended["status"], ended["text"]) == ("done", "All of it")
    assert (queued["status"], queued["text"]) == ("pending", "")
    text = export_after_it_ended("md").content.decode()
    assert "- Status: Streaming (what had arrived when exported)" in text
    assert "#### Answer\n\nEcho #1: half" in text
    assert "#### Answer\n\nAll of it" in text


def test_a_title_makes_a_safe_file_name(owner: Any, owner_client: Any) -> None:
    turn = make_turn(owner, [("echo", {})], "Hi")
    for title, name in (
        ('../../etc/passwd"; rm -rf /', "etcpasswd-rm-rf"),
        ("Café — ünïcode", "cafe-unicode"),
        ("", f"session-{turn.session_id}"),
        ("???", f"session-{turn.session_id}"),
    ):
        Session.objects.filter(pk=turn.session_id).update(title=title)
        answer = download(owner_client, turn.session, "md")
        assert answer["Content-Disposition"] == f'attachment; filename="{name}.md"'
