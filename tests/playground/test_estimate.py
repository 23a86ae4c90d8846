"""The composer's estimate (/estimate/, /s/<id>/estimate/): the worst case Send would reserve
and what is left of the person's limits, before Send; it writes nothing."""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from playground import media, quotas
from playground.compose import read_compose
from playground.ledger import usd
from playground.models import (
    CatalogEntry,
    Pane,
    Quota,
    QuotaCounter,
    Response,
    Session,
    Turn,
    UsageEntry,
)
from tests.playground.helpers import make_turn, send_form

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
GPT5 = ("openai:gpt-5", {"max_tokens": 1000})


@pytest.fixture(autouse=True)
def _empty_celery_queue(clean_redis: Any) -> None:
    clean_redis.delete("celery")


@pytest.fixture
def site_key(settings: Any) -> None:
    """The site's OpenAI key, from the environment: GPT-5 can answer."""
    settings.PLAYGROUND_PROVIDER_KEYS = {"OPENAI_API_KEY": "sk-test-site-key"}


def plan_of(user: Any, form: dict[str, Any], history: dict[int, int] | None = None) -> Any:
    """What Send would plan for ``form``: the Plan whose worst case it reserves."""
    data = QueryDict(mutable=True)
    for name, value in form.items():
        data.setlist(name, value if isinstance(value, list) else [str(value)])
    return quotas.plan_turn(user.pk, read_compose(data, None, user), history)


def shown(response: Any) -> str:
    assert response.status_code == 200, response.content
    return " ".join(html.unescape(response.content.decode()).split())


def estimate(client: Any, form: dict[str, Any], session: Session | None = None) -> str:
    url = reverse("estimate", args=[session.pk]) if session else reverse("estimate_new")
    return shown(client.post(url, form, **HTMX))


def test_the_estimate_is_the_worst_case_send_reserves(
    owner: Any, owner_client: Any, site_key: None
) -> None:
    Quota.objects.create(user=owner, spend_per_month=Decimal("5"), tokens_per_month=10**7)
    form = send_form("Compare these two", panes=[GPT5, ("echo", {})])
    plan = plan_of(owner, form)
    assert plan.cost_usd and plan.cost_usd > 0

    page = estimate(owner_client, form)

    assert (
        f"At most {usd(plan.cost_known)} and {plan.tokens:,} tokens for this turn · free: Echo"
    ) in page
    # Send reserves exactly that.
    response = owner_client.post(reverse("send_new"), form, **HTMX)
    assert response.status_code == 200, response.content
    held = list(Response.objects.values_list("reserved_tokens", "reserved_cost"))
    assert sum(t for t, _ in held) == plan.tokens
    assert sum(c for _, c in held) == plan.cost_known


def test_an_empty_prompt_still_gets_an_estimate(owner: Any, owner_client: Any) -> None:
    form = send_form("", panes=[("echo", {})])
    plan = plan_of(owner, form)

    page = estimate(owner_client, form)

    assert f"At most {plan.tokens:,} tokens for this turn · free" in page
    assert "Write a prompt first" not in page


def test_a_follow_up_counts_the_conversation_so_far(owner: Any, owner_client: Any) -> None:
    turn = make_turn(owner, [("echo", {})])
    Response.objects.filter(turn=turn).update(input_tokens=100, output_tokens=50)
    form = send_form("And then?", panes=[("echo", {})])
    plan = plan_of(owner, form, {0: 150})
    assert plan.tokens == plan_of(owner, form).tokens + 150

    page = estimate(owner_client, form, turn.session)

    assert f"At most {plan.tokens:,} tokens for this turn" in page


def test_picked_image_files_count_in_the_worst_case(owner: Any, owner_client: Any) -> None:
    form = send_form("What is in these?", panes=[("echo", {})])
    plan = plan_of(owner, form)

    page = estimate(owner_client, {**form, "image_files": "2"})

    assert f"At most {plan.tokens + 2 * quotas.IMAGE_TOKENS:,} tokens" in page


def test_picked_videos_frames_and_recordings_count_as_long_as_their_limits(
    owner: Any, owner_client: Any
) -> None:
    """Their lengths are read only once they are sent: the estimate counts each as long as
    its limit allows, as Send counts a file whose length it cannot read; never more files
    than a turn may carry."""
    form = send_form("What happens?", panes=[("echo", {})])
    plan = plan_of(owner, form)
    video = media.media_tokens([{"kind": "video", "form": "file"}])
    audio = media.media_tokens([{"kind": "audio", "form": "file"}])
    frames = media.media_tokens([{"kind": "video", "form": "frames", "frames": [{}] * 3}])
    assert video > audio > frames > 0

    page = estimate(owner_client, {**form, "videos_files": "1", "audios_files": "1"})
    assert f"At most {plan.tokens + video + audio:,} tokens" in page

    page = estimate(owner_client, {**form, "video_frames_files": "3", "videos_files": "1"})
    assert f"At most {plan.tokens + frames + video:,} tokens" in page

    # Nine of each: two videos and two recordings at most, as Send would take.
    page = estimate(owner_client, {**form, "videos_files": "9", "audios_files": "9"})
    assert f"At most {plan.tokens + 2 * video + 2 * audio:,} tokens" in page


def test_what_is_left_of_the_persons_limits(owner: Any, owner_client: Any) -> None:
    Quota.objects.create(user=owner, spend_per_month=Decimal("5"), requests_per_day=100)
    now = timezone.now()
    me = f"user:{owner.pk}"
    QuotaCounter.objects.create(owner=me, period=quotas.month_of(now), spend=Decimal("0.12"))
    QuotaCounter.objects.create(owner=me, period=quotas.day_of(now), requests=7)

    page = estimate(owner_client, send_form("Hi", panes=[("echo", {})]))

    assert "Your limit: $4.88 of $5.00 left this month · 93 of 100 answers left today" in page
    assert "refused" not in page


def test_no_limit_line_without_a_quota(owner_client: Any) -> None:
    page = estimate(owner_client, send_form("Hi", panes=[("echo", {})]))
    assert "At most" in page
    assert "limit" not in page


def test_a_model_the_quota_does_not_allow_is_said_as_send_would(
    owner: Any, owner_client: Any
) -> None:
    Quota.objects.create(user=owner, allowed_models=["openai:gpt-5"])
    form = send_form("Hi", panes=[("echo", {})])
    with pytest.raises(quotas.QuotaRefused) as refused:
        plan_of(owner, form)

    page = estimate(owner_client, form)

    assert str(refused.value) == "Pane 1: Echo: your quota does not allow this model."
    assert str(refused.value) in page
    assert "At most" not in page


def test_a_turn_over_what_is_left_says_send_would_be_refused(owner: Any, owner_client: Any) -> None:
    Quota.objects.create(user=owner, requests_per_day=1)
    now = timezone.now()
    QuotaCounter.objects.create(owner=f"user:{owner.pk}", period=quotas.day_of(now), requests=1)

    page = estimate(owner_client, send_form("Hi", panes=[("echo", {})]))

    assert "Your limit: 0 of 1 answers left today" in page
    assert (
        "Send would be refused now: Your limit is 1 answer a day; 0 left, this turn asks for 1."
    ) in page


def test_a_model_without_a_price(owner: Any, owner_client: Any, site_key: None) -> None:
    CatalogEntry.objects.filter(key="openai:gpt-5").update(input_price=None, output_price=None)
    from playground.catalog import forget_catalog

    forget_catalog()
    form = send_form("Hi", panes=[GPT5])
    plan = plan_of(owner, form)

    page = estimate(owner_client, form)

    assert f"At most {plan.tokens:,} tokens for this turn · price unknown for OpenAI · GPT-5" in (
        page
    )
    assert "$" not in page


def test_a_form_that_send_would_refuse_gets_its_first_problem(owner_client: Any) -> None:
    page = estimate(owner_client, send_form("Hi", panes=[("nope:nothing", {})]))
    assert "Pane 1: unknown model 'nope:nothing'." in page
    assert "At most" not in page


def test_the_estimate_writes_nothing(
    owner: Any, owner_client: Any, site_key: None, clean_redis: Any
) -> None:
    Quota.objects.create(
        user=owner, spend_per_month=Decimal("5"), requests_per_day=100, tokens_per_month=10**7
    )
    turn = make_turn(owner, [("echo", {})])
    models = (QuotaCounter, Response, Turn, Session, Pane, UsageEntry)
    before = [m.objects.count() for m in models]
    keys_before = sorted(clean_redis.keys("pg:*"))  # the caches' versions the setup bumped
    form = send_form("Hello", panes=[GPT5, ("echo", {})])

    with CaptureQueriesContext(connection) as queries:
        new = estimate(owner_client, form)
        follow_up = estimate(owner_client, form, turn.session)

    assert "At most $" in new and "At most $" in follow_up
    assert "Your limit: $5.00 of $5.00 left this month" in new
    assert [m.objects.count() for m in models] == before
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert sorted(clean_redis.keys("pg:*")) == keys_before  # not even a Send counted


def test_only_the_sessions_owner_gets_its_estimate(
    owner: Any, outsider_client: Any, client: Any
) -> None:
    turn = make_turn(owner, [("echo", {})])
    form = send_form("Hi", panes=[("echo", {})])
    response = outsider_client.post(reverse("estimate", args=[turn.session_id]), form, **HTMX)
    assert response.status_code == 404


def test_anonymous_gets_no_estimate(client: Any) -> None:
    response = client.post(reverse("estimate_new"), send_form("Hi"), **HTMX)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_composer_asks_for_the_estimate(owner: Any, owner_client: Any) -> None:
    home = owner_client.get(reverse("home")).content.decode()
    assert f'id="estimate" class="estimate" hx-post="{reverse("estimate_new")}"' in home
    assert 'hx-include="#compose"' in home
    assert "turn-sent from:body" in home
    turn = make_turn(owner, [("echo", {})])
    page = owner_client.get(reverse("session", args=[turn.session_id])).content.decode()
    assert f'hx-post="{reverse("estimate", args=[turn.session_id])}"' in page
