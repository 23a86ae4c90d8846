"""The composer's "Same parameters for every pane" at Send (``same_params=on``): the first
pane's parameters, as typed, apply to every pane whose model has them; a model without one
ignores it and keeps its own other parameters. A set saved with it on keeps it."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from playground.models import ComparisonSet, Response, Session
from tests.playground.helpers import send_form

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
PANES = [
    ("echo", {"temperature": "0.3", "repeat": "2", "delay_ms": ""}),
    ("echo", {"temperature": "1.5", "repeat": "5", "delay_ms": "7"}),
    ("local:smollm2", {"temperature": "0.9", "top_p": "0.5"}),
]


@pytest.fixture(autouse=True)
def _empty_celery_queue(clean_redis: Any) -> None:
    clean_redis.delete("celery")


def send(client: Any, panes: Any = PANES, same: bool = True) -> Any:
    data = send_form(panes=panes)
    if same:
        data["same_params"] = "on"
    return client.post(reverse("send_new"), data, **HTMX)


def saved_params() -> list[dict[str, Any]]:
    return [r.params for r in Response.objects.order_by("pane__position")]


def test_the_first_panes_parameters_go_to_every_pane_that_has_them(owner_client: Any) -> None:
    response = send(owner_client)

    assert "HX-Redirect" in response, response.content.decode()
    assert saved_params() == [
        {"temperature": 0.3, "repeat": 2},
        {"temperature": 0.3, "repeat": 2},  # its delay too: the first pane's is the default
        {"temperature": 0.3, "top_p": 0.5},  # no repeat here; its own top_p stays
    ]


def test_without_the_toggle_each_pane_keeps_its_own(owner_client: Any) -> None:
    send(owner_client, same=False)
    assert saved_params() == [
        {"temperature": 0.3, "repeat": 2},
        {"temperature": 1.5, "repeat": 5, "delay_ms": 7},
        {"temperature": 0.9, "top_p": 0.5},
    ]


def test_a_bad_value_in_another_pane_is_replaced_by_the_first_panes(owner_client: Any) -> None:
    panes = [("echo", {"temperature": "0.3"}), ("echo", {"temperature": "9"})]
    response = send(owner_client, panes)
    assert "HX-Redirect" in response, response.content.decode()
    assert saved_params() == [{"temperature": 0.3}, {"temperature": 0.3}]


def test_a_bad_value_in_the_first_pane_is_refused_in_every_pane_that_has_it(
    owner_client: Any,
) -> None:
    panes = [("echo", {"repeat": "0"}), ("echo", {"repeat": "2"}), ("local:smollm2", {})]
    body = send(owner_client, panes).content.decode()
    assert "Pane 1: Echo: Repeat must be a whole number from 1 to 200; got 0." in body
    assert "Pane 2: Echo: Repeat must be a whole number from 1 to 200; got 0." in body
    assert "Pane 3" not in body
    assert (Session.objects.count(), Response.objects.count()) == (0, 0)


def test_a_set_saved_with_the_toggle_on_keeps_it_and_the_first_panes_parameters(
    owner: Any, owner_client: Any
) -> None:
    data = send_form(panes=PANES)
    data.update(same_params="on", set_name="One temperature", set_team="")

    owner_client.post(reverse("set_save"), data, **HTMX)

    saved = ComparisonSet.objects.get()
    assert saved.same_params is True
    assert saved.panes == [
        {"model_key": "echo", "params": {"temperature": 0.3, "repeat": 2}},
        {"model_key": "echo", "params": {"temperature": 0.3, "repeat": 2}},
        {"model_key": "local:smollm2", "params": {"temperature": 0.3, "top_p": 0.5}},
    ]
    page = owner_client.get(f"/?set={saved.pk}").content.decode()
    assert '<input type="checkbox" name="same_params" value="on" checked>' in page
