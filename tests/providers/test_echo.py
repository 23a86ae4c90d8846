"""The built-in echo model."""

from __future__ import annotations

import pytest

from providers.base import Finish, Message, ParamError, TextDelta, Usage
from providers.echo import Echo
from providers.registry import get_provider
from tests.providers.replay import chat, collect


async def test_echo_repeats_the_last_user_message_word_by_word() -> None:
    request = chat(
        "echo",
        Message("system", "ignored here"),
        Message("user", "first"),
        Message("assistant", "Echo #1: first"),
        Message("user", "hello there"),
        key="",
        params={"delay_ms": 0},
    )

    events = await collect(Echo(), request)

    assert events == [
        TextDelta("Echo "),
        TextDelta("#2: "),
        TextDelta("hello "),
        TextDelta("there"),
        Usage(input_tokens=8, output_tokens=4),
        Finish("stop"),
    ]


async def test_echo_max_tokens_cuts_the_answer_with_reason_length() -> None:
    request = chat(
        "echo",
        Message("user", "one two three"),
        key="",
        params=Echo.clean_params({"delay_ms": 0, "max_tokens": 3, "repeat": 2}),
    )

    events = await collect(Echo(), request)

    assert events == [
        TextDelta("Echo "),
        TextDelta("#1: "),
        TextDelta("one "),
        Usage(input_tokens=3, output_tokens=3),
        Finish("length"),
    ]


def test_echo_parameters_are_bounded() -> None:
    assert Echo.clean_params({"delay_ms": "5", "repeat": 3}) == {"delay_ms": 5, "repeat": 3}
    with pytest.raises(ParamError, match="Delay per word"):
        Echo.clean_params({"delay_ms": 5000})


def test_echo_is_registered_and_needs_no_key() -> None:
    provider = get_provider("echo")
    assert isinstance(provider, Echo)
    assert not provider.needs_key
