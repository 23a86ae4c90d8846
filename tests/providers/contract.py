"""The adapter table of the contract suite (test_contract.py): for every adapter in the
registry, how to ask it (model, credentials, base URL), where its endpoint is (and any token
exchange to mock first), and for each scenario the recorded bytes its vendor sends and the
normalized events the adapter must turn them into.

A scenario an API genuinely does not have is a sentence saying why (``Absent``), and no test
is generated for it. Spark's websocket adapter is not here: it is tested against a real local
websocket server in test_spark.py. Echo has its own small test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import respx

from providers.base import (
    ChatRequest,
    Credentials,
    ErrorKind,
    Event,
    Failure,
    Finish,
    Message,
    Provider,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from providers.pangu import IAMTokens, Pangu
from providers.qianfan import AccessTokens, QianfanV1
from providers.registry import provider_class
from tests.providers.replay import KEY, head, recorded

# --------------------------------------------------------------------------- the shapes


@dataclass(frozen=True)
class Stream:
    """A body the endpoint answers with (status 200) and the events it must become.

    ``label`` says where the bytes come from: ``<dir>/<case>`` for a recording under
    tests/fixtures/streams, with a note when it was built from one."""

    label: str
    body: bytes
    events: tuple[Event, ...]
    id: str = ""  # a short name for test ids; the case name of a recording

    def __str__(self) -> str:
        return self.id or self.label


@dataclass(frozen=True)
class Absent:
    """A scenario the adapter's API does not have, and why."""

    why: str


@dataclass(frozen=True)
class Refusal:
    """An error answer to the request (or to the token exchange, at ``url``) and the one
    Failure it must become."""

    status: int
    body: Any  # JSON
    failure: Failure
    url: str = ""  # the endpoint that refuses; the chat endpoint when empty

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, json=self.body)


@dataclass(frozen=True)
class Limited:
    """A rate-limit answer, the delay its headers ask for, and the error's sentence."""

    body: Any
    headers: Mapping[str, str]
    delay: float
    message: str
    status: int = 429

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, json=self.body, headers=dict(self.headers))


@dataclass(frozen=True)
class Cut:
    """The connection drops ``keep`` bytes into the first line holding ``marker`` of
    ``stream``; ``events`` arrived before (the test adds the NETWORK failure)."""

    stream: Stream
    marker: bytes
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Adapter:
    name: str  # registry name
    display: str  # how failures name it
    model: str
    url: str  # the chat endpoint
    answer: Stream  # a normal answer, usage included where the API reports it
    reasoning: Stream | Absent
    tool_call: Stream | Absent
    auth: Refusal
    rate_limits: tuple[Limited, ...]  # the first is also the one that never relents
    errors: tuple[Stream, ...]  # errors inside a 200 stream
    malformed: Stream
    cut: Cut
    end: bytes  # marks the line that completes the answer; a body closed before it is cut
    unfinished: tuple[Event, ...]  # what the answer closed before its ``end`` line shows
    usage: bool | Absent = True
    key: str = KEY
    extra: Mapping[str, str] = field(default_factory=dict)
    base_url: str = ""
    method: str = "POST"
    content_type: str = "text/event-stream"
    make: Callable[[], Provider] | None = None  # a fresh instance when the class needs one
    setup: Callable[[respx.MockRouter], None] | None = None  # token exchange and the like

    def __str__(self) -> str:
        return self.name

    def provider(self) -> Provider:
        return self.make() if self.make else provider_class(self.name)()

    def request(self, *, tools: tuple[ToolSpec, ...] = ()) -> ChatRequest:
        return ChatRequest(
            model=self.model,
            messages=(Message("user", "Hello"),),
            credentials=Credentials(api_key=self.key, extra=dict(self.extra)),
            base_url=self.base_url,
            tools=tools,
        )

    @property
    def secrets(self) -> list[str]:
        """Credential parts no message may hold."""
        hidden = {"secret_key", "api_secret", "password"}
        return [v for v in (self.key, *(self.extra.get(k, "") for k in hidden)) if v]

    def cut_failure(self) -> Failure:
        return Failure(
            ErrorKind.NETWORK, f"The connection to {self.display} was cut mid-answer", False
        )


def rec(directory: str, case: str, *events: Event) -> Stream:
    return Stream(f"{directory}/{case}", recorded(directory, case), events, case)


def built(id: str, label: str, body: bytes, *events: Event) -> Stream:
    return Stream(label, body, events, id)


WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

T = TextDelta
R = ReasoningDelta


def failure(kind: ErrorKind, message: str, permanent: bool, status: int | None = None) -> Failure:
    return Failure(kind, message, permanent, status)


def auth(message: str, status: int | None = 401) -> Failure:
    return Failure(ErrorKind.AUTH, message, True, status)


def upstream(message: str, permanent: bool = False) -> Failure:
    return Failure(ErrorKind.UPSTREAM, message, permanent)


def blocked(message: str) -> Failure:
    return Failure(ErrorKind.CONTENT_FILTER, message, True)


def openai_error(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


# --------------------------------------------------------------------------- OpenAI family

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
OPENAI_ANSWER = rec(
    "openai",
    "answer",
    T("Paris"),
    T(" is the"),
    T(" capital of France."),
    Usage(input_tokens=21, output_tokens=83, reasoning_tokens=64),
    Finish("stop"),
)
OPENAI_TOOL_CALL = rec(
    "openai",
    "tool_call",
    ToolCall("call_Wl3uVq8kJ2", "get_weather", '{"city": "Paris"}'),
    ToolCall("call_8ZfQnR0xHc", "get_time", '{"tz": "Europe/Paris"}'),
    Usage(input_tokens=84, output_tokens=46, reasoning_tokens=0),
    Finish("tool_calls"),
)
OPENAI_MALFORMED = rec(
    "openai",
    "malformed",
    T("One"),
    T(" three"),
    Usage(input_tokens=9, output_tokens=3, reasoning_tokens=None),
    Finish("length"),
)
OPENAI_RATE_LIMITED = openai_error(
    "Rate limit reached for gpt-5-mini on requests per min (RPM): Limit 3.",
    "requests",
    "rate_limit_exceeded",
)
OPENAI_CUT = Cut(OPENAI_ANSWER, b'" capital', (T("Paris"), T(" is the")))
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


def openai_server_error(display: str) -> Stream:
    """openai/error_in_stream: an error object before any text, then [DONE]."""
    return rec(
        "openai",
        "error_in_stream",
        upstream(f"{display} reported an error (server_error): {SERVER_ERROR}"),
    )


OPENAI = Adapter(
    name="openai",
    display="OpenAI",
    model="gpt-5-mini",
    url=OPENAI_URL,
    answer=OPENAI_ANSWER,
    reasoning=Absent("Chat Completions streams no reasoning text (only its token count)"),
    tool_call=OPENAI_TOOL_CALL,
    auth=Refusal(
        401,
        openai_error(
            "Incorrect API key provided: sk-test-****************0c1e. You can find your API "
            "key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        auth(
            "OpenAI rejected the API key (401): Incorrect API key provided: [redacted]. You can "
            "find your API key at https://platform.openai.com/account/api-keys."
        ),
    ),
    rate_limits=(
        Limited(
            OPENAI_RATE_LIMITED,
            {"retry-after": "2"},
            2.0,
            "Rate limited by OpenAI (429): Rate limit reached for gpt-5-mini on requests per "
            "min (RPM): Limit 3.",
        ),
        # retry-after-ms is more precise and wins over retry-after.
        Limited(
            OPENAI_RATE_LIMITED,
            {"retry-after-ms": "1500", "retry-after": "2"},
            1.5,
            "Rate limited by OpenAI (429): Rate limit reached for gpt-5-mini on requests per "
            "min (RPM): Limit 3.",
        ),
    ),
    errors=(openai_server_error("OpenAI"),),
    malformed=OPENAI_MALFORMED,
    cut=OPENAI_CUT,
    end=b'"finish_reason":"stop"',
    unfinished=(T("Paris"), T(" is the"), T(" capital of France.")),
)

GATEWAY = "https://gateway.example/llm/v1"


def compatible_server(
    name: str, display: str, model: str, url: str, base_url: str = "", key: str = KEY, **kw: Any
) -> Adapter:
    """A server speaking the OpenAI wire format: OpenAI's recordings apply byte for byte."""
    return Adapter(
        name=name,
        display=display,
        model=model,
        url=url,
        base_url=base_url,
        key=key,
        answer=kw.pop("answer", OPENAI_ANSWER),
        tool_call=kw.pop("tool_call", OPENAI_TOOL_CALL),
        auth=kw.pop(
            "auth",
            Refusal(
                401,
                openai_error(f"Invalid API key: {KEY}", "invalid_request_error", "invalid_api_key"),
                auth(f"{display} rejected the API key (401): Invalid API key: [redacted]"),
            ),
        ),
        rate_limits=(
            Limited(
                openai_error("Too many requests", "rate_limit_error"),
                {"retry-after": "3"},
                3.0,
                f"Rate limited by {display} (429): Too many requests",
            ),
        ),
        errors=(openai_server_error(display),),
        malformed=OPENAI_MALFORMED,
        cut=kw.pop("cut", OPENAI_CUT),
        end=b'"finish_reason":"stop"',
        **kw,
    )


OPENAI_COMPATIBLE = compatible_server(
    "openai_compatible",
    "OpenAI-compatible server",
    "gpt-oss-20b",
    f"{GATEWAY}/chat/completions",
    base_url=f"{GATEWAY}/",
    # vLLM, SGLang and DeepSeek send reasoning as reasoning_content alike.
    reasoning=rec(
        "deepseek",
        "thinking",
        R("Primes below 10:"),
        R(" 2, 3, 5, 7."),
        T("There are four"),
        T("."),
        Usage(input_tokens=15, output_tokens=58, reasoning_tokens=52),
        Finish("stop"),
    ),
    unfinished=(T("Paris"), T(" is the"), T(" capital of France.")),
)

LOCAL_ANSWER = rec("local", "no_done", T("Hello"), T("!"), Finish("stop"))
LOCAL = compatible_server(
    "local",
    "Local",
    "SmolLM2-135M-Instruct",
    "http://127.0.0.1:8081/v1/chat/completions",
    answer=LOCAL_ANSWER,
    usage=Absent("llama.cpp's server sends timings, not usage, in the recorded stream"),
    cut=Cut(LOCAL_ANSWER, b'"!"', (T("Hello"),)),
    reasoning=Absent("the embedded model (SmolLM2) does not reason"),
    tool_call=Absent(
        "the embedded server is run without tools; Local refuses them before the call"
    ),
    auth=Refusal(
        401,
        {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}},
        auth("Local rejected the API key (401): Invalid API Key"),
    ),
    unfinished=(T("Hello"), T("!")),
)

OLLAMA_REASONING = rec(
    "ollama",
    "reasoning",
    R("Simple"),
    R(" greeting."),
    T("Hi"),
    T(" there!"),
    Usage(input_tokens=12, output_tokens=9, reasoning_tokens=None),
    Finish("stop"),
)
OLLAMA_OPENAI = compatible_server(
    "ollama",
    "Ollama",
    "qwen3:0.6b",
    "http://127.0.0.1:11434/v1/chat/completions",
    answer=OLLAMA_REASONING,
    reasoning=OLLAMA_REASONING,
    tool_call=rec(
        "ollama",
        "tool_call",
        ToolCall("call_h4x8q2lm", "get_weather", '{"city":"Oslo"}'),
        Usage(input_tokens=141, output_tokens=22, reasoning_tokens=None),
        Finish("tool_calls"),
    ),
    cut=Cut(OLLAMA_REASONING, b'" there!"', (R("Simple"), R(" greeting."), T("Hi"))),
    auth=Refusal(
        401,
        {"error": {"message": "unauthorized", "type": "api_error"}},
        auth("Ollama rejected the API key (401): unauthorized"),
    ),
    unfinished=(R("Simple"), R(" greeting."), T("Hi"), T(" there!")),
)

DEEPSEEK_REASONER = rec(
    "deepseek",
    "reasoner",
    R("The user asks"),
    R(" for 2+2."),
    T("2 + 2"),
    T(" = 4"),
    Usage(input_tokens=13, output_tokens=47, reasoning_tokens=39),
    Finish("stop"),
)
DEEPSEEK = Adapter(
    name="deepseek",
    display="DeepSeek",
    model="deepseek-reasoner",
    url="https://api.deepseek.com/chat/completions",
    answer=DEEPSEEK_REASONER,
    reasoning=rec(
        "deepseek",
        "thinking",
        R("Primes below 10:"),
        R(" 2, 3, 5, 7."),
        T("There are four"),
        T("."),
        Usage(input_tokens=15, output_tokens=58, reasoning_tokens=52),
        Finish("stop"),
    ),
    tool_call=rec(
        "deepseek",
        "tool_call",
        ToolCall(
            "call_0_8f3d2a1b-6c4e-4f7a-9b2d-1e5c8a7f3b60", "get_weather", '{"city": "Hangzhou"}'
        ),
        Usage(input_tokens=164, output_tokens=21, reasoning_tokens=None),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        openai_error(
            f"Authentication Fails, Your api key: {KEY} is invalid",
            "authentication_error",
            "invalid_request_error",
        ),
        auth(
            "DeepSeek rejected the API key (401): Authentication Fails, Your api key: "
            "[redacted] is invalid"
        ),
    ),
    rate_limits=(
        Limited(
            {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}},
            {"retry-after": "1"},
            1.0,
            "Rate limited by DeepSeek (429): Rate limit reached",
        ),
    ),
    errors=(
        # After keep-alives, before any text: retried.
        rec(
            "deepseek",
            "error_in_stream",
            upstream(
                "DeepSeek reported an error (server_busy): Server is busy, please try again later."
            ),
        ),
        built(
            "error_after_text",
            "deepseek/reasoner up to ' = 4', then an error object",
            head(recorded("deepseek", "reasoner"), b'" = 4"')
            + b'data: {"error":{"message":"Rate limit reached, slow down","type":'
            b'"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}\n\n',
            R("The user asks"),
            R(" for 2+2."),
            T("2 + 2"),
            failure(
                ErrorKind.RATE_LIMIT,
                "DeepSeek reported an error (rate_limit_error): Rate limit reached, slow down",
                False,
            ),
        ),
    ),
    malformed=rec(
        "deepseek",
        "malformed",
        T("Yes"),
        T(" indeed."),
        Usage(input_tokens=6, output_tokens=4, reasoning_tokens=None),
        Finish("stop"),
    ),
    cut=Cut(DEEPSEEK_REASONER, b'" for 2+2."', (R("The user asks"),)),
    end=b'"finish_reason":"stop"',
    unfinished=(R("The user asks"), R(" for 2+2."), T("2 + 2"), T(" = 4")),
)

XAI_REASONING = rec(
    "xai",
    "reasoning",
    R("Count"),
    R(" the r's."),
    T("There are"),
    T(" three."),
    Usage(input_tokens=18, output_tokens=254, reasoning_tokens=250),
    Finish("stop"),
)
XAI = Adapter(
    name="xai",
    display="xAI",
    model="grok-3-mini",
    url="https://api.x.ai/v1/chat/completions",
    answer=XAI_REASONING,
    reasoning=XAI_REASONING,
    tool_call=rec(
        "xai",
        "tool_call_empty_finish",
        ToolCall("call_41236794", "search_docs", '{"query":"httpx streaming"}'),
        Usage(input_tokens=310, output_tokens=26, reasoning_tokens=0),
        Finish("tool_calls"),
    ),
    # xAI refuses a bad key with 400 and a {"code", "error"} body.
    auth=Refusal(
        400,
        {
            "code": "Client specified an invalid argument",
            "error": "Incorrect API key provided: xa***Wt. You can obtain an API key from "
            "https://console.x.ai.",
        },
        auth(
            "xAI rejected the API key (400): Incorrect API key provided: xa***Wt. You can "
            "obtain an API key from https://console.x.ai.",
            400,
        ),
    ),
    rate_limits=(
        Limited(
            {
                "code": "Some resource has been exhausted",
                "error": "Your team has exhausted its requests per second rate limit.",
            },
            {"retry-after": "3"},
            3.0,
            "Rate limited by xAI (429): Your team has exhausted its requests per second rate "
            "limit.",
        ),
    ),
    errors=(
        # The {"code", "error"} shape mid-stream is UNCONFIRMED (PROVIDERS.md §4).
        rec(
            "xai",
            "error_in_stream",
            upstream(
                "xAI reported an error (The service is currently unavailable): The model is at "
                "capacity. Please try again later."
            ),
        ),
    ),
    malformed=rec(
        "xai",
        "malformed",
        T("Two"),
        T(" four."),
        Usage(input_tokens=12, output_tokens=3, reasoning_tokens=0),
        Finish("stop"),
    ),
    cut=Cut(XAI_REASONING, b'" three."', (R("Count"), R(" the r's."), T("There are"))),
    end=b'"finish_reason":"stop"',
    unfinished=(R("Count"), R(" the r's."), T("There are"), T(" three.")),
)

# --------------------------------------------------------------------------- Alibaba

QWEN_THINKING = rec(
    "dashscope",
    "compatible_thinking",
    R("Two plus two"),
    R(" is four."),
    T("2 + 2"),
    T(" = 4."),
    Usage(input_tokens=18, output_tokens=31, reasoning_tokens=22),
    Finish("stop"),
)
QWEN = Adapter(
    name="qwen",
    display="Alibaba Qwen",
    model="qwen-plus",
    url="https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions",
    answer=rec(
        "qwen",
        "answer",
        R("Greet back."),
        T("你好"),
        T("！有什么可以帮你？"),
        Usage(input_tokens=11, output_tokens=25, reasoning_tokens=14),
        Finish("stop"),
    ),
    reasoning=QWEN_THINKING,
    tool_call=rec(
        "dashscope",
        "compatible_tool_call",
        ToolCall("call_5f1c0a8e2b7d4c9a", "get_weather", '{"city": "Hangzhou"}'),
        Usage(input_tokens=212, output_tokens=19, reasoning_tokens=None),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        {
            "error": {
                "message": "Incorrect API key provided. ",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            },
            "request_id": "3f0c1b5e-8d2a-9b47-a6e1-0c2d4f6b8a19",
        },
        auth(
            "Alibaba Qwen rejected the API key (401, invalid_api_key): Incorrect API key provided."
        ),
    ),
    rate_limits=(
        Limited(
            {
                "error": {
                    "message": "Requests rate limit exceeded, please try again later.",
                    "type": "limit_requests",
                    "param": None,
                    "code": "limit_requests",
                }
            },
            {"retry-after": "5"},
            5.0,
            "Rate limited by Alibaba Qwen (429, limit_requests): Requests rate limit exceeded, "
            "please try again later.",
        ),
    ),
    errors=(
        rec(
            "dashscope",
            "compatible_filtered",
            T("Here is"),
            T(" the story"),
            blocked(
                "Alibaba Qwen blocked the content (data_inspection_failed): "
                "Output data may contain inappropriate content."
            ),
        ),
    ),
    malformed=rec(
        "dashscope",
        "compatible_malformed",
        T("Bonjour"),
        T(" !"),
        Usage(input_tokens=10, output_tokens=4, reasoning_tokens=None),
        Finish("stop"),
    ),
    cut=Cut(QWEN_THINKING, b'" = 4."', (R("Two plus two"), R(" is four."), T("2 + 2"))),
    end=b'"finish_reason":"stop"',
    unfinished=(R("Greet back."), T("你好"), T("！有什么可以帮你？")),
)

NATIVE_ANSWER = rec(
    "dashscope",
    "native_answer",
    T("The capital"),
    T(" of Zhejiang is"),
    T(" Hangzhou."),
    Usage(input_tokens=22, output_tokens=8, reasoning_tokens=None),
    Finish("stop"),
)
QWEN_NATIVE = Adapter(
    name="qwen_native",
    display="Alibaba DashScope",
    model="qwen-plus",
    url="https://dashscope.aliyuncs.com/api/v1/services/aigc/text-generation/generation",
    answer=NATIVE_ANSWER,
    reasoning=rec(
        "dashscope",
        "native_thinking",
        R("Seventeen times"),
        R(" three is 51."),
        T("17 × 3 = 51"),
        Usage(input_tokens=16, output_tokens=16, reasoning_tokens=8),
        Finish("length"),
    ),
    tool_call=rec(
        "dashscope",
        "native_tool_call",
        ToolCall("call_c2a7e0d95b3f4e18", "get_weather", '{"city": "Hangzhou"}'),
        Usage(input_tokens=216, output_tokens=19, reasoning_tokens=None),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        {
            "code": "InvalidApiKey",
            "message": f"Invalid API-key provided: {KEY}",
            "request_id": "6c3d2e1f-0a9b-4c8d-b7e6-f5a4b3c2d1e0",
        },
        auth(
            "Alibaba DashScope rejected the API key (401, InvalidApiKey): "
            "Invalid API-key provided: [redacted]"
        ),
    ),
    rate_limits=(
        Limited(
            {
                "code": "Throttling.AllocationQuota",
                "message": "Allocated quota exceeded, please increase your quota limit.",
                "request_id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
            },
            {"retry-after": "3"},
            3.0,
            "Rate limited by Alibaba DashScope (429, Throttling.AllocationQuota): Allocated "
            "quota exceeded, please increase your quota limit.",
        ),
        Limited(
            {
                "code": "Throttling.RateQuota",
                "message": "Requests rate limit exceeded, please try again later.",
                "request_id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
            },
            {"retry-after": "3"},
            3.0,
            "Rate limited by Alibaba DashScope (429, Throttling.RateQuota): Requests rate limit "
            "exceeded, please try again later.",
        ),
    ),
    errors=(
        rec(
            "dashscope",
            "native_filtered",
            T("Once upon"),
            blocked(
                "Alibaba DashScope blocked the content (DataInspectionFailed): "
                "Output data may contain inappropriate content."
            ),
        ),
        rec(
            "dashscope",
            "native_internal_error",
            upstream(
                "Alibaba DashScope had a server error (InternalError.Algo): An internal error has "
                "occured during execution, please try again later or contact service support."
            ),
        ),
    ),
    malformed=rec(
        "dashscope",
        "native_malformed",
        T("Yes"),
        T(" is."),
        Usage(input_tokens=8, output_tokens=4, reasoning_tokens=None),
        Finish("stop"),
    ),
    cut=Cut(NATIVE_ANSWER, b'" Hangzhou."', (T("The capital"), T(" of Zhejiang is"))),
    end=b'"finish_reason":"stop"',
    unfinished=(T("The capital"), T(" of Zhejiang is"), T(" Hangzhou.")),
)

# --------------------------------------------------------------------------- Zhipu, Baichuan

ZHIPU_KEY = "4c5d2f8a9b1e4f7a8c3d6e9f0a1b2c3d.Xy7kP2mQ9rS4tV6w"  # id.secret: signed as a JWT
ZHIPU_ANSWER = rec(
    "zhipu",
    "answer",
    T("你好"),
    T("！我是"),
    T("智谱清言。"),
    Usage(input_tokens=9, output_tokens=7, reasoning_tokens=None),
    Finish("stop"),
)
ZHIPU = Adapter(
    name="zhipu",
    display="Zhipu GLM",
    model="glm-4-flash",
    url="https://open.bigmodel.cn/api/paas/v4/chat/completions",
    key=ZHIPU_KEY,
    answer=ZHIPU_ANSWER,
    reasoning=rec(
        "zhipu",
        "reasoning",
        R("用户问"),
        R("1+1，答案是2。"),
        T("\n1+1=2"),
        Usage(input_tokens=12, output_tokens=15, reasoning_tokens=9),
        Finish("stop"),
    ),
    tool_call=rec(
        "zhipu",
        "tool_call",
        ToolCall("call_-8963210461946870281", "get_weather", '{"city": "北京"}'),
        Usage(input_tokens=178, output_tokens=12, reasoning_tokens=None),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        {"error": {"code": "1002", "message": "Authorization Token非法，请确认Token正确传递。"}},
        auth(
            "Zhipu GLM rejected the API key (401, 1002): "
            "Authorization Token非法，请确认Token正确传递。"
        ),
    ),
    rate_limits=(
        Limited(
            {"error": {"code": "1302", "message": "您当前使用该API的并发数过高，请降低并发。"}},
            {"retry-after": "4"},
            4.0,
            "Rate limited by Zhipu GLM for running too many at once (429, 1302): "
            "您当前使用该API的并发数过高，请降低并发。",
        ),
    ),
    errors=(
        rec(
            "zhipu",
            "error_in_stream",
            T("这个故事"),
            blocked(
                "Zhipu GLM blocked the content as unsafe (1301): 系统检测到输入或生成内容可能包含"
                "不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。"
            ),
        ),
        rec(
            "zhipu",
            "busy_in_stream",
            failure(
                ErrorKind.RATE_LIMIT,
                "Rate limited by Zhipu GLM (1305): 该API已经触发流量限制，请稍后再试",
                False,
            ),
        ),
        rec(
            "zhipu",
            "network_error",
            T("Let me"),
            upstream("Zhipu GLM broke off the answer (network_error)"),
        ),
    ),
    malformed=rec(
        "zhipu",
        "malformed",
        T("早上"),
        T("好"),
        Usage(input_tokens=6, output_tokens=2, reasoning_tokens=None),
        Finish("stop"),
    ),
    cut=Cut(ZHIPU_ANSWER, "智谱清言".encode(), (T("你好"), T("！我是"))),
    end=b'"finish_reason"',
    unfinished=(T("你好"), T("！我是"), T("智谱清言。")),
)

BAICHUAN_ANSWER = rec(
    "baichuan",
    "answer",
    T("您好"),
    T("！有什么"),
    T("可以帮您？"),
    Usage(input_tokens=5, output_tokens=9, reasoning_tokens=None),
    Finish("stop"),
)
BAICHUAN = Adapter(
    name="baichuan",
    display="Baichuan",
    model="Baichuan4",
    url="https://api.baichuan-ai.com/v1/chat/completions",
    answer=BAICHUAN_ANSWER,
    reasoning=Absent("Baichuan's chat API streams no reasoning"),
    tool_call=rec(
        "baichuan",
        "tool_call",
        ToolCall("3951017OF8doB0A", "get_current_weather", '{"location": "上海"}'),
        Usage(input_tokens=96, output_tokens=17, reasoning_tokens=None),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        {
            "error": {
                "code": "invalid_api_key",
                "message": f"Incorrect API key provided: {KEY}",
                "type": "invalid_request_error",
                "param": None,
            }
        },
        auth("Baichuan rejected the API key (401): Incorrect API key provided: [redacted]"),
    ),
    rate_limits=(
        Limited(
            openai_error(
                "Rate limit reached for requests", "rate_limit_error", "rate_limit_exceeded"
            ),
            {"retry-after": "7"},
            7.0,
            "Rate limited by Baichuan (429): Rate limit reached for requests",
        ),
    ),
    errors=(
        rec(
            "baichuan",
            "error_in_stream",
            T("从前"),
            upstream(
                "Baichuan reported an error (server_error): Internal server error, please retry "
                "later."
            ),
        ),
    ),
    malformed=rec(
        "baichuan",
        "malformed",
        T("一"),
        T("三"),
        Usage(input_tokens=4, output_tokens=3, reasoning_tokens=None),
        Finish("length"),
    ),
    cut=Cut(BAICHUAN_ANSWER, "可以帮您".encode(), (T("您好"), T("！有什么"))),
    end=b'"finish_reason":"stop"',
    unfinished=(T("您好"), T("！有什么"), T("可以帮您？")),
)

# --------------------------------------------------------------------------- iFlytek (HTTP)

SPARK_PASSWORD = "kXpTsQwLmNbVcRzAyUe:NjAxYjFjODQ3ZmE5"
SPARK_HTTP_ANSWER = rec(
    "spark",
    "http_answer",
    T("你好"),
    T("，有什么"),
    T("可以帮你？"),
    Usage(input_tokens=2, output_tokens=9),
    Finish("stop"),
)
SPARK_HTTP = Adapter(
    name="spark_http",
    display="iFlytek Spark (HTTP)",
    model="generalv3.5",
    url="https://spark-api-open.xf-yun.com/v1/chat/completions",
    key=SPARK_PASSWORD,
    answer=SPARK_HTTP_ANSWER,
    reasoning=rec(
        "spark",
        "http_reasoning",
        R("先算27×400=10800，"),
        R("再加27×53=1431。"),
        T("12231"),
        Usage(input_tokens=11, output_tokens=37, reasoning_tokens=31),
        Finish("stop"),
    ),
    tool_call=rec(
        "spark",
        "http_tool_call",
        ToolCall("call_0", "get_weather", '{"location":"合肥"}'),
        Usage(input_tokens=96, output_tokens=13),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        openai_error("invalid user", "invalid_request_error", "10401"),
        auth("iFlytek Spark (HTTP) rejected the API password (401): invalid user"),
    ),
    rate_limits=(
        Limited(
            {"code": 11202, "message": "AppIdQpsOverFlowError", "sid": "cha000b1a2c"},
            {"retry-after": "7"},
            7.0,
            "Rate limited by iFlytek Spark (HTTP) (11202): AppIdQpsOverFlowError",
        ),
    ),
    errors=(
        rec(
            "spark",
            "http_output_blocked",
            T("我来"),
            blocked(
                "iFlytek Spark (HTTP) blocked the content (10014): "
                "输出内容涉及敏感信息，审核不通过，后续结果无法展示给用户"
            ),
        ),
    ),
    malformed=rec(
        "spark",
        "http_malformed",
        T("很好"),
        T("，谢谢。"),
        Usage(input_tokens=3, output_tokens=5),
        Finish("stop"),
    ),
    cut=Cut(SPARK_HTTP_ANSWER, "可以帮你".encode(), (T("你好"), T("，有什么"))),
    # Spark's HTTP stream gives no finish reason: [DONE] completes the answer.
    end=b"[DONE]",
    unfinished=(T("你好"), T("，有什么"), T("可以帮你？")),
)

# --------------------------------------------------------------------------- Huawei Pangu

PANGU_PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
PANGU_BASE = (
    f"https://pangu.cn-southwest-2.myhuaweicloud.com/v1/{PANGU_PROJECT}"
    "/deployments/5b3c8f2e-1d4a-4e6b-9c7a-2f1e0d9c8b7a"
)
PANGU_IAM_URL = "https://iam.cn-southwest-2.myhuaweicloud.com/v3/auth/tokens"
PANGU_IAM = {
    "username": "playground-bot",
    "password": "S3cret!Pangu#2025",
    "domain": "acme-cloud",
    "project": "cn-southwest-2",
}
PANGU_TOKEN = "MIIYXQYJKoZIhvcNAQcCoIIYTjCCGEoCAQExDTALBglghkgBZQMEAgEwghZrBgkqhkiG9w0BBwGgghZcBIIW"


def pangu_iam(router: respx.MockRouter) -> None:
    """Huawei IAM hands out a token in X-Subject-Token (201)."""
    expires = datetime.fromtimestamp(4102444800, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    router.post(PANGU_IAM_URL).mock(
        return_value=httpx.Response(
            201,
            headers={"X-Subject-Token": PANGU_TOKEN},
            json={"token": {"expires_at": expires, "methods": ["password"]}},
        )
    )


PANGU_ANSWER = rec(
    "pangu",
    "answer",
    T("您好"),
    T("，我是盘古大模型"),
    T("。"),
    Usage(input_tokens=15, output_tokens=8),
    Finish("stop"),
)
PANGU = Adapter(
    name="pangu",
    display="Huawei Pangu",
    model="pangu-nlp-n2-32k",
    url=f"{PANGU_BASE}/chat/completions",
    base_url=PANGU_BASE,
    key="",  # no app code: the IAM account below
    extra=PANGU_IAM,
    make=lambda: Pangu(tokens=IAMTokens()),
    setup=pangu_iam,
    answer=PANGU_ANSWER,
    reasoning=rec(
        "pangu",
        "reasoning",
        R("先估算：27×450=12150，"),
        R("再加27×3=81，得12231。"),
        T("27 × 453 = 12231"),
        Usage(input_tokens=20, output_tokens=256),
        Finish("length"),
    ),
    tool_call=rec(
        "pangu",
        "tool_call",
        ToolCall("chatcmpl-tool-7e41c09b", "get_weather", '{"location": "贵阳"}'),
        Usage(input_tokens=120, output_tokens=21),
        Finish("tool_calls"),
    ),
    # The account is refused at the IAM token exchange; the chat endpoint is never called.
    auth=Refusal(
        401,
        {
            "error": {
                "code": 401,
                "message": f"The username or password is wrong: {PANGU_IAM['password']}",
                "title": "Unauthorized",
            }
        },
        auth(
            "Huawei Cloud IAM refused the Huawei Pangu account (user name, password, domain or "
            "project) (401): The username or password is wrong: [redacted]"
        ),
        url=PANGU_IAM_URL,
    ),
    rate_limits=(
        Limited(
            {"error_code": "APIG.0308", "error_msg": "The request is throttled."},
            {"Retry-After": "9"},
            9.0,
            "Rate limited by Huawei Pangu (429): The request is throttled. [APIG.0308]",
        ),
    ),
    errors=(
        rec(
            "pangu",
            "error_in_stream",
            upstream(
                "Huawei Pangu reported an error (PANGU.3267): The inference service is busy, "
                "please try again later."
            ),
        ),
        built(
            "error_after_text",
            "pangu/answer up to '。', then an error object",
            head(recorded("pangu", "answer"), "。".encode())
            + b'data:{"error_code":"PANGU.3291","error_msg":"Output blocked by content policy"}'
            b"\n\n",
            T("您好"),
            T("，我是盘古大模型"),
            blocked(
                "Huawei Pangu reported an error (PANGU.3291): Output blocked by content policy"
            ),
        ),
    ),
    malformed=rec(
        "pangu",
        "malformed",
        T("好的"),
        T("，谢谢。"),
        Usage(input_tokens=6, output_tokens=4),
        Finish("stop"),
    ),
    cut=Cut(PANGU_ANSWER, "。".encode(), (T("您好"), T("，我是盘古大模型"))),
    end=b'"finish_reason":"stop"',
    unfinished=(T("您好"), T("，我是盘古大模型")),
)

# --------------------------------------------------------------------------- Baidu Qianfan

QIANFAN_AK = "Mc1hYJ8sNo2kRsFpqLd7Ub3G"
QIANFAN_SK = "p2K8aWm9cR4tYx6ZbN1qVe3LsD7fHj0Q"
QIANFAN_OAUTH_URL = "https://aip.baidubce.com/oauth/2.0/token"


def qianfan_oauth(router: respx.MockRouter) -> None:
    """Baidu's OAuth hands out an access token for the AK/SK pair."""
    router.post(QIANFAN_OAUTH_URL).mock(
        return_value=httpx.Response(
            200,
            json={
                "access_token": "24.6c5e1ff107f0e8bcef8c46d3424a0e78.2592000.1757058622.282335",
                "expires_in": 2592000,
            },
        )
    )


QIANFAN_V1_ANSWER = rec(
    "qianfan",
    "v1_answer",
    T("你好！"),
    T("我是文心一言，"),
    T("有什么可以帮你？"),
    Usage(input_tokens=2, output_tokens=14),
    Finish("stop"),
)
QIANFAN_V1 = Adapter(
    name="qianfan_v1",
    display="Baidu Qianfan",
    model="ernie-4.0-8k-latest",
    url="https://aip.baidubce.com/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/ernie-4.0-8k-latest",
    key=QIANFAN_AK,
    extra={"secret_key": QIANFAN_SK},
    make=lambda: QianfanV1(tokens=AccessTokens()),
    setup=qianfan_oauth,
    answer=QIANFAN_V1_ANSWER,
    reasoning=Absent("the v1 (ERNIE wenxinworkshop) API streams no reasoning"),
    tool_call=rec(
        "qianfan",
        "v1_function_call",
        ToolCall("call_0", "get_weather", '{"city":"北京","unit":"celsius"}'),
        Usage(input_tokens=118, output_tokens=31),
        Finish("tool_calls"),
    ),
    # The keys are refused at the token exchange; the chat endpoint is never called.
    auth=Refusal(
        401,
        {
            "error": "invalid_client",
            "error_description": f"Client authentication failed: {QIANFAN_SK}",
        },
        auth(
            "Baidu Qianfan rejected the API key or secret key (401): invalid_client Client "
            "authentication failed: [redacted]"
        ),
        url=QIANFAN_OAUTH_URL,
    ),
    rate_limits=(
        Limited(
            {"error_code": 336501, "error_msg": "Rate limit reached for RPM"},
            {"retry-after": "7"},
            7.0,
            "Rate limited by Baidu Qianfan (336501): Rate limit reached for RPM",
        ),
    ),
    errors=(
        rec(
            "qianfan",
            "v1_error_line",
            T("长城始建于"),
            upstream(
                "Baidu Qianfan is under heavy load (336100): system busy, please try again later"
            ),
        ),
        rec(
            "qianfan",
            "v1_rate_limited_line",
            failure(
                ErrorKind.RATE_LIMIT,
                "Rate limited by Baidu Qianfan (18): Open api qps request limit reached",
                False,
            ),
        ),
    ),
    malformed=rec(
        "qianfan",
        "v1_malformed",
        T("好的，"),
        T("谢谢。"),
        Usage(input_tokens=5, output_tokens=4),
        Finish("stop"),
    ),
    cut=Cut(QIANFAN_V1_ANSWER, "有什么可以帮你".encode(), (T("你好！"), T("我是文心一言，"))),
    end=b'"is_end":true',
    unfinished=(T("你好！"), T("我是文心一言，")),
)

QIANFAN_KEY = "bce-v3/ALTAK-Fq0dPL3nNNsb2EZXDCtUG/8f2b0c4e6a1d3f5b7c9e0a2d4f6b8c1e3a5d7f9b"
QIANFAN_V2_ANSWER = rec(
    "qianfan",
    "v2_answer",
    T("你好！"),
    T("有什么可以"),
    T("帮你的吗？"),
    Usage(input_tokens=3, output_tokens=9),
    Finish("stop"),
)
QIANFAN = Adapter(
    name="qianfan",
    display="Baidu Qianfan",
    model="ernie-4.0-turbo-8k",
    url="https://qianfan.baidubce.com/v2/chat/completions",
    key=QIANFAN_KEY,
    answer=QIANFAN_V2_ANSWER,
    reasoning=rec(
        "qianfan",
        "v2_reasoning",
        R("9.11 和 9.9 比较："),
        R("0.11 < 0.90。"),
        T("9.9 更大。"),
        Usage(input_tokens=12, output_tokens=28, reasoning_tokens=22),
        Finish("stop"),
    ),
    tool_call=rec(
        "qianfan",
        "v2_tool_call",
        ToolCall("call_5e1b8a2f0c", "get_weather", '{"city": "上海"}'),
        Usage(input_tokens=96, output_tokens=17),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        {
            "error": {
                "code": "invalid_iam_token",
                "message": f"IAM Certification failed for {QIANFAN_KEY[:40]}",
                "type": "invalid_request_error",
            },
            "id": "as-0bq6wuz3ha",
        },
        auth("Baidu Qianfan rejected the API key (401): IAM Certification failed for [redacted]"),
    ),
    rate_limits=(
        Limited(
            {"error": {"code": "tpm_rate_limit_exceeded", "message": "Rate limit reached"}},
            {"retry-after": "2"},
            2.0,
            "Rate limited by Baidu Qianfan (429): Rate limit reached",
        ),
        Limited(
            {
                "error": {
                    "code": "rpm_rate_limit_exceeded",
                    "message": "Rate limit reached for RPM",
                    "type": "rate_limit_exceeded",
                },
                "id": "as-9xq2b7wz1c",
            },
            {"retry-after": "4"},
            4.0,
            "Rate limited by Baidu Qianfan (429): Rate limit reached for RPM",
        ),
    ),
    errors=(
        rec(
            "qianfan",
            "v2_error_in_stream",
            T("杭州的"),
            upstream(
                "Baidu Qianfan reported an error (internal_error): Internal error, please retry "
                "later"
            ),
        ),
    ),
    malformed=rec(
        "qianfan",
        "v2_malformed",
        T("好的"),
        T("。"),
        Usage(input_tokens=4, output_tokens=2),
        Finish("stop"),
    ),
    cut=Cut(QIANFAN_V2_ANSWER, "帮你的吗".encode(), (T("你好！"), T("有什么可以"))),
    end=b'"finish_reason":"normal"',
    unfinished=(T("你好！"), T("有什么可以")),
)

# --------------------------------------------------------------------------- Tencent Hunyuan

HUNYUAN_SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA"
HUNYUAN_SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3Cozk1qA"
HUNYUAN_ANSWER = rec(
    "hunyuan",
    "native_answer",
    T("你好"),
    T("！我是腾讯混元，"),
    T("很高兴见到你。"),
    Usage(input_tokens=4, output_tokens=12),
    Finish("stop"),
)


def tencent_error(code: str, message: str) -> dict[str, Any]:
    return {
        "Response": {
            "Error": {"Code": code, "Message": message},
            "RequestId": "3c140219-cfe9-470e-b241-907877d6fb03",
        }
    }


HUNYUAN = Adapter(
    name="hunyuan",
    display="Tencent Hunyuan",
    model="hunyuan-turbos-latest",
    url="https://hunyuan.tencentcloudapi.com/",
    key=HUNYUAN_SECRET_ID,
    extra={"secret_key": HUNYUAN_SECRET_KEY},
    answer=HUNYUAN_ANSWER,
    reasoning=rec(
        "hunyuan",
        "native_reasoning",
        R("先算 17×3=51，"),
        R("再加 4 得 55。"),
        T("答案是 55。"),
        Usage(input_tokens=9, output_tokens=18),
        Finish("stop"),
    ),
    tool_call=rec(
        "hunyuan",
        "native_tool_call",
        ToolCall("call_d0qa3l8h2gq8e3fn5gfg", "get_weather", '{"city":"深圳"}'),
        Usage(input_tokens=152, output_tokens=19),
        Finish("tool_calls"),
    ),
    # Tencent API 3.0 answers errors with status 200 and a Response.Error body.
    auth=Refusal(
        200,
        tencent_error(
            "AuthFailure.SecretIdNotFound",
            f"The SecretId {HUNYUAN_SECRET_ID} is not found, please ensure that your SecretId "
            "is correct.",
        ),
        auth(
            "Tencent Hunyuan rejected the SecretId or SecretKey (AuthFailure.SecretIdNotFound): "
            "The SecretId [redacted] is not found, please ensure that your SecretId is correct.",
            None,
        ),
    ),
    rate_limits=(
        Limited(
            tencent_error("RequestLimitExceeded", "Your current request times exceeds the limit."),
            {"retry-after": "5"},
            5.0,
            "Rate limited by Tencent Hunyuan (RequestLimitExceeded): Your current request times "
            "exceeds the limit.",
        ),
    ),
    errors=(
        rec(
            "hunyuan",
            "native_error_in_stream",
            T("北京今天"),
            upstream("Tencent Hunyuan reported an error (2001): 引擎层内部错误；请稍后重试。"),
        ),
    ),
    malformed=rec(
        "hunyuan",
        "native_malformed",
        T("好的"),
        T("，没问题。"),
        Usage(input_tokens=3, output_tokens=5),
        Finish("stop"),
    ),
    cut=Cut(HUNYUAN_ANSWER, "很高兴见到你".encode(), (T("你好"), T("！我是腾讯混元，"))),
    end=b'"FinishReason":"stop"',
    unfinished=(T("你好"), T("！我是腾讯混元，")),
)

HUNYUAN_KEY = "sk-BbNefD7FObbp3PE6R2supfJbBUoEyIn5RLwMBsrLvuKigQyi"
HUNYUAN_COMPAT_ANSWER = rec(
    "hunyuan",
    "compatible_answer",
    T("你好"),
    T("！有什么可以帮你？"),
    Usage(input_tokens=3, output_tokens=8),
    Finish("stop"),
)
_HUNYUAN_COMPAT = recorded("hunyuan", "compatible_answer")
HUNYUAN_COMPATIBLE = Adapter(
    name="hunyuan_compatible",
    display="Tencent Hunyuan",
    model="hunyuan-turbos-latest",
    url="https://api.hunyuan.cloud.tencent.com/v1/chat/completions",
    key=HUNYUAN_KEY,
    answer=HUNYUAN_COMPAT_ANSWER,
    reasoning=Absent("no recording of reasoning from the compatible endpoint"),
    tool_call=rec(
        "hunyuan",
        "compatible_tool_call",
        ToolCall("call_cvn0q3kb5n8s", "get_weather", '{"city":"广州"}'),
        Usage(input_tokens=88, output_tokens=15),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        {
            "error": {
                "message": f"Incorrect API key provided: {HUNYUAN_KEY[:12]}***",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
        auth("Tencent Hunyuan rejected the API key (401): Incorrect API key provided: [redacted]"),
    ),
    rate_limits=(
        Limited(
            {"error": {"message": "concurrency limit exceeded", "type": "rate_limit_error"}},
            {"retry-after": "3"},
            3.0,
            "Rate limited by Tencent Hunyuan (429): concurrency limit exceeded",
        ),
    ),
    errors=(
        built(
            "error_after_text",
            "hunyuan/compatible_answer up to its second text, then an error object",
            head(_HUNYUAN_COMPAT, "有什么可以帮你".encode())
            + b'data: {"error":{"message":"engine internal error","type":"server_error",'
            b'"code":"internal_error"}}\n\n',
            T("你好"),
            upstream("Tencent Hunyuan reported an error (server_error): engine internal error"),
        ),
    ),
    malformed=built(
        "malformed",
        "hunyuan/compatible_answer with a broken line in it",
        head(_HUNYUAN_COMPAT, "有什么可以帮你".encode())
        + b'data: {"id":"4c7e1a9b3d5f8e2a","obj\n\n'
        + _HUNYUAN_COMPAT[len(head(_HUNYUAN_COMPAT, "有什么".encode())) :],
        *HUNYUAN_COMPAT_ANSWER.events,
    ),
    cut=Cut(HUNYUAN_COMPAT_ANSWER, b'"finish_reason":"stop"', (T("你好"), T("！有什么可以帮你？"))),
    end=b'"finish_reason":"stop"',
    unfinished=(T("你好"), T("！有什么可以帮你？")),
)

# --------------------------------------------------------------------------- Ollama, Meta

OLLAMA_ANSWER = rec(
    "ollama_native",
    "answer",
    T("Hello"),
    T("! How can I"),
    T(" help?"),
    Usage(input_tokens=26, output_tokens=9),
    Finish("stop"),
)
_OLLAMA_ERROR = recorded("ollama_native", "error_in_stream")
OLLAMA_NATIVE = Adapter(
    name="ollama_native",
    display="Ollama",
    model="llama3.2:3b",
    url="http://127.0.0.1:11434/api/chat",
    content_type="application/x-ndjson",
    answer=OLLAMA_ANSWER,
    reasoning=rec(
        "ollama_native",
        "thinking",
        R("The user"),
        R(" wants 17 × 23: 17×20=340, 17×3=51."),
        T("17 × 23"),
        T(" = 391."),
        Usage(input_tokens=18, output_tokens=57),
        Finish("stop"),
    ),
    tool_call=rec(
        "ollama_native",
        "tool_call",
        ToolCall("call_k2xq7m1p", "get_weather", '{"city":"Oslo","unit":"celsius"}'),
        # Servers before 0.12 give no id: one is made up, unique within the answer.
        ToolCall("call_2", "get_time", '{"zone":"Europe/Oslo"}'),
        Usage(input_tokens=141, output_tokens=38),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401, {"error": "unauthorized"}, auth("Ollama rejected the API key (401): unauthorized")
    ),
    rate_limits=(
        Limited(
            {"error": "too many requests"},
            {"retry-after": "7"},
            7.0,
            "Rate limited by Ollama (429): too many requests",
        ),
    ),
    errors=(
        rec(
            "ollama_native",
            "error_in_stream",
            T("Yes"),
            T(", I can"),
            upstream(
                "Ollama reported an error: an error was encountered while running the model: "
                "unexpected EOF"
            ),
        ),
        built(
            "error_before_text",
            "ollama_native/error_in_stream from its error line on",
            _OLLAMA_ERROR[_OLLAMA_ERROR.index(b'{"error"') :],
            upstream(
                "Ollama reported an error: an error was encountered while running the model: "
                "unexpected EOF"
            ),
        ),
    ),
    malformed=rec(
        "ollama_native",
        "malformed",
        T("Fine"),
        T(", thanks."),
        Usage(input_tokens=7, output_tokens=5),
        Finish("stop"),
    ),
    cut=Cut(OLLAMA_ANSWER, b'" help?"', (T("Hello"), T("! How can I"))),
    end=b'"done":true',
    unfinished=(T("Hello"), T("! How can I"), T(" help?")),
)

LLAMA_ANSWER = rec(
    "llama_api",
    "answer",
    T("Hello"),
    T("! How can I"),
    T(" help?"),
    Usage(input_tokens=22, output_tokens=9),
    Finish("stop"),
)
LLAMA_MODEL = "Llama-4-Maverick-17B-128E-Instruct-FP8"
LLAMA_API = Adapter(
    name="llama_api",
    display="Meta Llama API",
    model=LLAMA_MODEL,
    url="https://api.llama.com/v1/chat/completions",
    answer=LLAMA_ANSWER,
    reasoning=rec(
        "llama_api",
        "reasoning",
        R("17 × 23: 17×20=340,"),
        R(" plus 51 is 391."),
        T("17 × 23 = 391."),
        Usage(input_tokens=15, output_tokens=64),
        Finish("length"),
    ),
    tool_call=rec(
        "llama_api",
        "tool_call",
        ToolCall(
            "call_3f2a8c91-7b4e-4d0a-9e1c-5a6b7c8d9e0f",
            "get_weather",
            '{"location": "Bellevue, WA"}',
        ),
        ToolCall(
            "call_9d8c7b6a-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "get_time",
            '{"zone": "America/Los_Angeles"}',
        ),
        Usage(input_tokens=312, output_tokens=41),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        {"title": "Unauthorized", "detail": "Invalid API key", "status": 401},
        auth("Meta Llama API rejected the API key (401): Unauthorized: Invalid API key"),
    ),
    rate_limits=(
        Limited(
            {"error": {"message": "Rate limit exceeded", "type": "rate_limit_error"}},
            {"retry-after": "5"},
            5.0,
            "Rate limited by Meta Llama API (429): Rate limit exceeded",
        ),
    ),
    errors=(
        rec(
            "llama_api",
            "error_in_stream",
            T("Once upon"),
            upstream(
                "Meta Llama API reported an error (server_error): The model is overloaded, "
                "please try again later."
            ),
        ),
        # The error event's data shape is UNCONFIRMED: a problem+json body is read too.
        built(
            "problem_json_before_text",
            "an error event with a problem+json body, before any text",
            b"event: error\n"
            b'data: {"title":"Too Many Requests","detail":"Rate limit exceeded","status":429}\n\n',
            failure(
                ErrorKind.RATE_LIMIT,
                "Meta Llama API reported an error (429): Too Many Requests: Rate limit exceeded",
                False,
            ),
        ),
    ),
    malformed=rec(
        "llama_api",
        "malformed",
        T("Fine"),
        T(", thanks."),
        Usage(input_tokens=7, output_tokens=5),
        Finish("stop"),
    ),
    cut=Cut(LLAMA_ANSWER, b'" help?"', (T("Hello"), T("! How can I"))),
    end=b'"event_type":"complete"',
    unfinished=(T("Hello"), T("! How can I"), T(" help?")),
)

LLAMA_COMPAT_ANSWER = rec(
    "llama_api",
    "compat_answer",
    T("Hello"),
    T(" there!"),
    Usage(input_tokens=12, output_tokens=4),
    Finish("stop"),
)
LLAMA_API_COMPATIBLE = compatible_server(
    "llama_api_compatible",
    "Meta Llama API (OpenAI-compatible)",
    LLAMA_MODEL,
    "https://api.llama.com/compat/v1/chat/completions",
    answer=LLAMA_COMPAT_ANSWER,
    reasoning=Absent(
        "no recording of reasoning from the compatible endpoint (the native one has one)"
    ),
    cut=Cut(LLAMA_COMPAT_ANSWER, b'" there!"', (T("Hello"),)),
    auth=Refusal(
        401,
        {"title": "Unauthorized", "detail": "Invalid API key"},
        auth(
            "Meta Llama API (OpenAI-compatible) rejected the API key (401): Unauthorized: "
            "Invalid API key"
        ),
    ),
    unfinished=(T("Hello"), T(" there!")),
)

# --------------------------------------------------------------------------- Anthropic, Google

ANTHROPIC_ANSWER = rec(
    "anthropic",
    "answer",
    T("Hello"),
    T("! How can I"),
    T(" help?"),
    Usage(input_tokens=25, output_tokens=12),
    Finish("stop"),
)
ANTHROPIC = Adapter(
    name="anthropic",
    display="Anthropic",
    model="claude-sonnet-4-5",
    url="https://api.anthropic.com/v1/messages",
    answer=ANTHROPIC_ANSWER,
    reasoning=rec(
        "anthropic",
        "thinking",
        R("27 * 453: 27*400=10800,"),
        R(" 27*53=1431, total 12231."),
        T("27 × 453 = 12,231"),
        Usage(input_tokens=48, output_tokens=2048),
        Finish("length"),
    ),
    tool_call=rec(
        "anthropic",
        "tool_use",
        T("Let me check."),
        ToolCall(
            "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", '{"location": "San Francisco, CA"}'
        ),
        Usage(input_tokens=472, output_tokens=89),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
        },
        auth("Anthropic rejected the API key (401): invalid x-api-key"),
    ),
    rate_limits=(
        Limited(
            {
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": "Number of request tokens has exceeded your per-minute rate limit",
                },
            },
            {"retry-after": "11"},
            11.0,
            "Rate limited by Anthropic (429): Number of request tokens has exceeded your "
            "per-minute rate limit",
        ),
    ),
    errors=(
        rec(
            "anthropic",
            "overloaded",
            upstream("Anthropic reported an error (overloaded_error): Overloaded"),
        ),
        built(
            "error_after_text",
            "anthropic/answer up to its content_block_stop, then an error event",
            recorded("anthropic", "answer")[
                : recorded("anthropic", "answer").index(b"event: content_block_stop")
            ]
            + b"event: error\n"
            b'data: {"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}\n\n',
            T("Hello"),
            T("! How can I"),
            T(" help?"),
            failure(
                ErrorKind.RATE_LIMIT,
                "Anthropic reported an error (rate_limit_error): Slow down",
                False,
            ),
        ),
    ),
    malformed=rec(
        "anthropic",
        "malformed",
        T("Fine"),
        T(", thanks."),
        Usage(input_tokens=7, output_tokens=5),
        Finish("stop"),
    ),
    cut=Cut(ANTHROPIC_ANSWER, b'" help?"', (T("Hello"), T("! How can I"))),
    end=b"event: message_delta",
    unfinished=(T("Hello"), T("! How can I"), T(" help?")),
)

GEMINI_ANSWER = rec(
    "gemini",
    "answer",
    T("Why did the"),
    T(" scarecrow win an award? Because he was"),
    T(" outstanding in his field!\n"),
    Usage(input_tokens=9, output_tokens=17, reasoning_tokens=None),
    Finish("stop"),
)
GEMINI_EXHAUSTED = {
    "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaMetric": "generativelanguage.googleapis.com/requests"}],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"},
        ],
    }
}
GEMINI = Adapter(
    name="gemini",
    display="Google Gemini",
    model="gemini-2.0-flash",
    url=(
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash"
        ":streamGenerateContent?alt=sse"
    ),
    answer=GEMINI_ANSWER,
    reasoning=rec(
        "gemini",
        "thoughts",
        R("**Weighing the question**\n\nThe user wants a prime."),
        T("The smallest prime is 2."),
        Usage(input_tokens=11, output_tokens=127, reasoning_tokens=120),
        Finish("stop"),
    ),
    tool_call=rec(
        "gemini",
        "function_call",
        ToolCall("call_1", "get_weather", '{"location": "Boston, MA", "unit": "celsius"}'),
        Usage(input_tokens=57, output_tokens=18, reasoning_tokens=None),
        Finish("tool_calls"),
    ),
    auth=Refusal(
        401,
        {
            "error": {
                "code": 401,
                "message": "Request had invalid authentication credentials.",
                "status": "UNAUTHENTICATED",
            }
        },
        auth(
            "Google Gemini rejected the API key (401): "
            "Request had invalid authentication credentials."
        ),
    ),
    rate_limits=(
        # The body asks for 17 s; the Retry-After header wins.
        Limited(
            GEMINI_EXHAUSTED,
            {"retry-after": "3"},
            3.0,
            "Rate limited by Google Gemini (429): You exceeded your current quota, please "
            "check your plan and billing details.",
        ),
    ),
    errors=(
        rec(
            "gemini",
            "error_in_stream",
            upstream(
                "Google Gemini reported an error (UNAVAILABLE): "
                "The model is overloaded. Please try again later."
            ),
        ),
    ),
    malformed=rec(
        "gemini",
        "malformed",
        T("Alpha"),
        T(" Gamma"),
        Usage(input_tokens=4, output_tokens=3, reasoning_tokens=None),
        Finish("length"),
    ),
    cut=Cut(
        GEMINI_ANSWER,
        b"outstanding",
        (T("Why did the"), T(" scarecrow win an award? Because he was")),
    ),
    end=b'"finishReason"',
    unfinished=(T("Why did the"), T(" scarecrow win an award? Because he was")),
)

# --------------------------------------------------------------------------- the table

ADAPTERS: tuple[Adapter, ...] = (
    OPENAI,
    OPENAI_COMPATIBLE,
    LOCAL,
    DEEPSEEK,
    XAI,
    QWEN,
    QWEN_NATIVE,
    ZHIPU,
    BAICHUAN,
    SPARK_HTTP,
    PANGU,
    QIANFAN,
    QIANFAN_V1,
    HUNYUAN,
    HUNYUAN_COMPATIBLE,
    OLLAMA_NATIVE,
    LLAMA_API,
    LLAMA_API_COMPATIBLE,
    OLLAMA_OPENAI,
    ANTHROPIC,
    GEMINI,
)

#: Registered adapters tested elsewhere, and where.
ELSEWHERE = {
    "echo": "test_echo.py: no vendor behind it, nothing to replay",
    "spark": "test_spark.py: a websocket, replayed by a real local websocket server",
}
