"""The one streaming interface every provider speaks.

A provider is given a :class:`ChatRequest` (messages, a model id, validated parameters,
credentials and a base URL) and yields normalized :data:`Event` values. It knows nothing of
users, sessions or databases; nothing here imports Django.

Adapters implement :meth:`Provider.open_stream`, which may raise :class:`ProviderError`.
Callers use :meth:`Provider.stream`, which retries retryable errors that happen before the
first event, and turns any failure into a final :class:`Failure` event, so a caller never
has to catch anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, TypeVar

import httpx

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    """An image given by URL (``https://…``) or inline as base64 ``data`` with a MIME type."""

    url: str = ""
    data: str = ""
    mime_type: str = "image/png"

    @property
    def data_url(self) -> str:
        return self.url or f"data:{self.mime_type};base64,{self.data}"


@dataclass(frozen=True)
class VideoPart:
    """A video, in one of three forms (``form``): a file inline (base64 ``data`` with its
    MIME type), a web address (``url``, ``https://…``), or ``frames``: still images in order,
    which a model that takes images but not video is sent as images."""

    url: str = ""
    data: str = ""
    mime_type: str = "video/mp4"
    frames: tuple[ImagePart, ...] = ()

    @property
    def text(self) -> str:
        """No text: an adapter that reads ``.text`` of every non-image part reads ""."""
        return ""

    @property
    def form(self) -> MediaForm:
        return "frames" if self.frames else "url" if self.url else "file"

    @property
    def data_url(self) -> str:
        return self.url or f"data:{self.mime_type};base64,{self.data}"


@dataclass(frozen=True)
class AudioPart:
    """A recording: a file inline (base64 ``data`` with its MIME type) or a web address."""

    url: str = ""
    data: str = ""
    mime_type: str = "audio/wav"

    @property
    def text(self) -> str:
        """No text: an adapter that reads ``.text`` of every non-image part reads ""."""
        return ""

    @property
    def form(self) -> MediaForm:
        return "url" if self.url else "file"

    @property
    def data_url(self) -> str:
        return self.url or f"data:{self.mime_type};base64,{self.data}"

    @property
    def format(self) -> str:
        """The short name APIs use for the encoding: wav, mp3, ogg, flac, m4a, webm."""
        return AUDIO_FORMATS.get(self.mime_type, self.mime_type.rpartition("/")[2])


#: How a video or a recording is given: "file" (inline bytes), "url", or "frames" (video).
MediaForm = Literal["file", "url", "frames"]
AUDIO_FORMATS = {
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/mp4": "m4a",
    "audio/webm": "webm",
}

Part = TextPart | ImagePart | VideoPart | AudioPart
Role = Literal["system", "user", "assistant"]
P = TypeVar("P", TextPart, ImagePart, VideoPart, AudioPart)


@dataclass(frozen=True)
class Message:
    role: Role
    content: str | tuple[Part, ...]

    @property
    def text(self) -> str:
        """The text of the message, image parts left out."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(frozen=True)
class Credentials:
    """What a provider needs to authenticate. ``api_key`` covers most; ``extra`` the rest."""

    api_key: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print a key, even by accident
        return f"Credentials(api_key={'***' if self.api_key else ''!r}, extra=<{len(self.extra)}>)"


#: Credential parts that are secrets (never shown back, not even their last characters);
#: the others (a region, an app id, a project) are settings kept in the same vault token.
SECRET_PARTS = frozenset({"api_key", "secret_key", "api_secret", "password"})


@dataclass(frozen=True)
class CredentialPart:
    """One field of a provider's credential: its name in ``Credentials`` ("api_key" or a
    key of ``extra``), its label, whether it must be given, and whether it is a secret."""

    name: str
    label: str
    required: bool
    secret: bool


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: its name, what it does, and a JSON Schema of its
    arguments (``{"type": "object", "properties": …}``)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True)
class ReadLimits:
    """The most one answer may make a process hold or wait for, whatever its server sends.

    A person's own endpoint can be anything, and one worker streams everyone's panes: each
    bound ends the answer with a sentence, keeps what had arrived, and closes the
    connection. The worker sets them from its settings; the defaults are the same.
    """

    #: Bytes of an error body read for its message; the rest is not read.
    error_body_bytes: int = 64 * 1024
    #: Bytes of one line of a stream (an SSE line, an NDJSON line, a body read whole, a
    #: websocket message), checked as the bytes arrive.
    line_bytes: int = 1024 * 1024
    #: Characters of an answer's text and reasoning together.
    answer_chars: int = 1_000_000
    #: Characters of an answer's tool calls (names and arguments together), and how many.
    tool_call_chars: int = 1_000_000
    tool_calls: int = 128
    #: Seconds from sending the request to the answer's first byte (its status and
    #: headers), and the longest silence once it has started.
    first_byte_seconds: float = 120.0
    stall_seconds: float = 120.0


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: Sequence[Message]
    params: Mapping[str, Any] = field(default_factory=dict)
    credentials: Credentials = field(default_factory=Credentials)
    base_url: str = ""
    tools: Sequence[ToolSpec] = ()
    limits: ReadLimits = field(default_factory=ReadLimits)
    #: What this try may still wait for the answer's first byte, when earlier tries of the
    #: same answer used some of ``limits.first_byte_seconds`` (:meth:`Provider.stream`
    #: sets it); ``None``: all of it.
    first_byte_left: float | None = None

    @property
    def first_byte_wait(self) -> float:
        """Seconds this try waits for the answer's first byte (a token exchange before it
        included): the tries of one answer share ``limits.first_byte_seconds``."""
        if self.first_byte_left is None:
            return self.limits.first_byte_seconds
        return max(0.0, self.first_byte_left)

    @property
    def first_byte_shared(self) -> bool:
        """Whether earlier tries used some of the first-byte wait."""
        left = self.first_byte_left
        return left is not None and left < self.limits.first_byte_seconds

    @property
    def system_prompt(self) -> str:
        return "\n\n".join(m.text for m in self.messages if m.role == "system")

    @property
    def conversation(self) -> list[Message]:
        """The messages without the system prompt (user and assistant turns)."""
        return [m for m in self.messages if m.role != "system"]

    @property
    def images(self) -> list[ImagePart]:
        """The images of every message, in order (a video's frames are not among them)."""
        return self.parts(ImagePart)

    @property
    def videos(self) -> list[VideoPart]:
        return self.parts(VideoPart)

    @property
    def audios(self) -> list[AudioPart]:
        return self.parts(AudioPart)

    def parts(self, kind: type[P]) -> list[P]:
        """The parts of type ``kind`` of every message, in order."""
        return [
            p
            for m in self.messages
            if not isinstance(m.content, str)
            for p in m.content
            if isinstance(p, kind)
        ]


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    #: The part of ``input_tokens`` the provider reports as audio, and as video, where it
    #: says (OpenAI's prompt_tokens_details, Gemini's promptTokensDetails, Qwen's).
    audio_input_tokens: int | None = None
    video_input_tokens: int | None = None


@dataclass(frozen=True)
class Finish:
    """The model finished. ``reason`` is normalized: stop, length, tool_calls,
    content_filter, or the provider's own word when it has no equivalent."""

    reason: str


class ErrorKind(enum.StrEnum):
    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    BAD_REQUEST = "bad_request"
    CONTENT_FILTER = "content_filter"
    UPSTREAM = "upstream"
    TIMEOUT = "timeout"
    NETWORK = "network"
    #: The answer reached one of the request's :class:`ReadLimits` on its length.
    LIMIT = "limit"


class ProviderError(Exception):
    """The one error type of this package.

    ``message`` is a sentence a person understands and names the provider. It never holds a
    credential. ``permanent`` says whether trying again could help.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        permanent: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Failure:
    """The stream failed; always the last event."""

    kind: ErrorKind
    message: str
    permanent: bool
    status: int | None = None


Event = TextDelta | ReasoningDelta | ToolCall | Usage | Finish | Failure


# --------------------------------------------------------------------------- parameters


class ParamError(ValueError):
    """A parameter value was refused; the message says which and why."""


@dataclass(frozen=True)
class Param:
    """A tunable the provider understands, with its bounds.

    ``kind`` is one of float, int, str, stops (a list of up to ``max`` strings), bool, choice.
    """

    name: str
    label: str
    kind: Literal["float", "int", "str", "stops", "bool", "choice"]
    description: str
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None
    choices: tuple[str, ...] = ()

    def clean(self, value: Any) -> Any:
        """Return ``value`` converted to this parameter's type, or raise :class:`ParamError`."""
        if value is None or value == "":
            return None
        try:
            if self.kind == "float":
                number: float = float(value)
                if not math.isfinite(number):
                    raise ValueError
                self._check_bounds(number)
                return number
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                whole = int(value)
                self._check_bounds(whole)
                return whole
            if self.kind == "bool":
                if isinstance(value, bool):
                    return value
                text = str(value).lower()
                if text in {"1", "true", "on", "yes"}:
                    return True
                if text in {"0", "false", "off", "no"}:
                    return False
                raise ValueError
            if self.kind == "choice":
                if str(value) not in self.choices:
                    raise ParamError(f"{self.label} must be one of {', '.join(self.choices)}.")
                return str(value)
            if self.kind == "stops":
                items = value if isinstance(value, list) else str(value).split("\n")
                stops = [str(s) for s in items if str(s)]
                limit = int(self.maximum or 4)
                if len(stops) > limit:
                    raise ParamError(f"{self.label} takes at most {limit} sequences.")
                return stops or None
            text = str(value)
            if self.maximum is not None and len(text) > self.maximum:
                raise ParamError(f"{self.label} is longer than {int(self.maximum)} characters.")
            return text
        except ParamError:
            raise
        except (TypeError, ValueError):
            raise ParamError(f"{self.label} must be {self._expected()}.") from None

    def _check_bounds(self, number: float) -> None:
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            raise ParamError(f"{self.label} must be {self._expected()}; got {number:g}.")

    def _expected(self) -> str:
        noun = {"float": "a number", "int": "a whole number", "bool": "on or off"}.get(
            self.kind, "text"
        )
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{noun} of at least {self.minimum:g}"
        return noun


# The shared parameters; adapters pick the ones their API has and may add extras.
TEMPERATURE = Param("temperature", "Temperature", "float", "Randomness of sampling.", 0, 2)
TOP_P = Param("top_p", "Top P", "float", "Nucleus sampling: keep this much probability mass.", 0, 1)
MAX_TOKENS = Param(
    "max_tokens", "Max output tokens", "int", "Upper bound on the answer's length.", 1, 1_000_000
)
TOP_K = Param("top_k", "Top K", "int", "Sample only from the K likeliest tokens.", 1, 1000)
SEED = Param("seed", "Seed", "int", "Same seed, same answer (where supported).", 0, 2**31 - 1)
STOP = Param("stop", "Stop sequences", "stops", "Stop when one of these appears.", maximum=4)
PRESENCE_PENALTY = Param(
    "presence_penalty", "Presence penalty", "float", "Push towards new topics.", -2, 2
)
FREQUENCY_PENALTY = Param(
    "frequency_penalty", "Frequency penalty", "float", "Push against repeating words.", -2, 2
)


def clean_params(declared: Sequence[Param], values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``values`` against ``declared``; unknown names and bad values are refused."""
    by_name = {p.name: p for p in declared}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ParamError(f"Unknown parameter: {', '.join(unknown)}.")
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        result = by_name[name].clean(value)
        if result is not None:
            cleaned[name] = result
    return cleaned


# --------------------------------------------------------------------------- errors


_STATUS_WORDS = {
    400: (ErrorKind.BAD_REQUEST, True, "{p} refused the request ({s})"),
    401: (ErrorKind.AUTH, True, "{p} rejected the API key ({s})"),
    402: (ErrorKind.AUTH, True, "{p} refused the request: billing or credit problem ({s})"),
    403: (ErrorKind.AUTH, True, "{p} refused access for this key ({s})"),
    404: (ErrorKind.BAD_REQUEST, True, "{p} does not know this model or endpoint ({s})"),
    408: (ErrorKind.TIMEOUT, False, "{p} timed out ({s})"),
    409: (ErrorKind.UPSTREAM, False, "{p} reported a conflict ({s})"),
    413: (ErrorKind.BAD_REQUEST, True, "{p} says the request is too large ({s})"),
    422: (ErrorKind.BAD_REQUEST, True, "{p} refused the request ({s})"),
    429: (ErrorKind.RATE_LIMIT, False, "Rate limited by {p} ({s})"),
}


def error_for_status(
    provider: str, status: int, detail: str = "", headers: Mapping[str, str] | None = None
) -> ProviderError:
    """Turn an HTTP error status into a :class:`ProviderError` with a readable sentence."""
    if status in _STATUS_WORDS:
        kind, permanent, words = _STATUS_WORDS[status]
    elif status >= 500:
        kind, permanent, words = ErrorKind.UPSTREAM, False, "{p} had a server error ({s})"
    else:
        kind, permanent, words = ErrorKind.BAD_REQUEST, True, "{p} refused the request ({s})"
    message = words.format(p=provider, s=status)
    detail = " ".join(detail.split())[:300]
    if detail:
        message += f": {detail}"
    return ProviderError(
        kind,
        message,
        permanent=permanent,
        status=status,
        retry_after=retry_after_seconds(headers or {}),
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Read ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        if "retry-after" in lowered:
            value = lowered["retry-after"].strip()
            try:
                return max(0.0, float(value))
            except ValueError:
                from email.utils import parsedate_to_datetime

                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None
    return None


def network_error(provider: str, exc: BaseException, *, started: bool) -> ProviderError:
    """A transport failure as a sentence; never includes the request (it may hold a key)."""
    if isinstance(exc, httpx.TimeoutException):
        what = "stopped answering mid-stream" if started else "did not answer in time"
        return ProviderError(ErrorKind.TIMEOUT, f"{provider} {what}", permanent=False)
    if started:
        message = f"The connection to {provider} was cut mid-answer"
    else:
        message = f"Could not reach {provider} ({type(exc).__name__})"
    return ProviderError(ErrorKind.NETWORK, message, permanent=False)


# --------------------------------------------------------------------------- bounds


def too_long_line(provider: str, limits: ReadLimits) -> ProviderError:
    """A line (or frame, or body) of more than ``limits.line_bytes``: the stream is broken
    or hostile, and another try would read the same."""
    return ProviderError(
        ErrorKind.UPSTREAM,
        f"{provider} sent one piece of its answer longer than {size_words(limits.line_bytes)}, "
        "the most read here at once; the answer was stopped there and what had arrived is "
        "kept",
        permanent=True,
    )


def no_first_byte(provider: str, limits: ReadLimits, *, shared: bool = False) -> ProviderError:
    """The first-byte wait is over; ``shared``: earlier tries used some of it."""
    return ProviderError(
        ErrorKind.TIMEOUT,
        f"{provider} did not start answering within {limits.first_byte_seconds:g} s"
        + (" in all" if shared else ""),
        permanent=False,
    )


def stalled(provider: str, limits: ReadLimits) -> ProviderError:
    return ProviderError(
        ErrorKind.TIMEOUT,
        f"{provider} sent nothing for {limits.stall_seconds:g} s, so the answer was stopped; "
        "what had arrived is kept",
        permanent=False,
    )


def size_words(count: int) -> str:
    """``count`` bytes as a person reads it: "4 KB", "1 MB"."""
    if count >= 1024 * 1024 and count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MB"
    if count >= 1024:
        return f"{count / 1024:g} KB"
    return f"{count} bytes"


class ToolCallBudget:
    """What one answer's tool calls have used of ``limits``: the calls started and the
    characters of their names and arguments. An adapter that puts calls together from
    pieces counts each piece here as it arrives, so a stream of pieces without end stops
    at the bound instead of growing in memory."""

    def __init__(self, provider: str, limits: ReadLimits) -> None:
        self.provider, self.limits = provider, limits
        self.calls = 0
        self.chars = 0

    def call(self) -> None:
        """Count a new call; raise once there are more than ``limits.tool_calls``."""
        self.calls += 1
        if self.calls > self.limits.tool_calls:
            raise ProviderError(
                ErrorKind.LIMIT,
                f"{self.provider} asked for more than {self.limits.tool_calls} tool calls in "
                "one answer, the most read here; the answer was stopped there and what had "
                "arrived is kept",
                permanent=True,
            )

    def add(self, text: str) -> str:
        """Count ``text`` (a piece of a call's arguments or name) and return it; raise once
        the answer's calls pass ``limits.tool_call_chars``."""
        self.chars += len(text)
        if self.chars > self.limits.tool_call_chars:
            raise ProviderError(
                ErrorKind.LIMIT,
                f"{self.provider}'s tool calls passed {self.limits.tool_call_chars:,} "
                "characters, the most one answer may have here; the answer was stopped there "
                "and what had arrived is kept",
                permanent=True,
            )
        return text


def answer_too_long(limits: ReadLimits) -> ProviderError:
    return ProviderError(
        ErrorKind.LIMIT,
        f"The answer reached {limits.answer_chars:,} characters, the most one answer may "
        "have here; it was stopped there and what had arrived is kept",
        permanent=True,
    )


# --------------------------------------------------------------------------- provider


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # one try and up to three retries
    base_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, attempt: int, hint: float | None) -> float:
        if hint is not None:
            return min(max(hint, 0.0), self.max_delay * 3)
        backoff = self.base_delay * (2.0 ** (attempt - 1))
        return min(backoff, self.max_delay) * (0.8 + 0.4 * random.random())


Sleep = Callable[[float], Awaitable[None]]


class Provider:
    """Base of every adapter. Subclasses set the class attributes and ``open_stream``."""

    name: ClassVar[str]  # registry name, e.g. "openai"
    display_name: ClassVar[str]  # how people call it, e.g. "OpenAI"
    default_base_url: ClassVar[str] = ""
    # False for a provider that answers in-process (Echo): no connection, so no egress check.
    calls_out: ClassVar[bool] = True
    needs_key: ClassVar[bool] = True
    key_env: ClassVar[str] = ""  # environment variable holding the key, e.g. OPENAI_API_KEY
    #: Credential parts besides ``api_key`` (read from ``Credentials.extra``), each with the
    #: environment variable that holds it until the vault lands, e.g.
    #: ``{"secret_key": "QIANFAN_SECRET_KEY"}``.
    extra_credentials: ClassVar[Mapping[str, str]] = {}
    #: Parts of ``extra_credentials`` that may be left empty (a region with a default, an
    #: optional organisation); the others are required.
    optional_credentials: ClassVar[frozenset[str]] = frozenset()
    #: How the vault's form names each part ("api_key" and those of extra_credentials).
    credential_labels: ClassVar[Mapping[str, str]] = {}
    params: ClassVar[tuple[Param, ...]] = (TEMPERATURE, TOP_P, MAX_TOKENS)
    supports_images: ClassVar[bool] = False
    #: Whether images may be given by web address (else only inline data).
    image_urls: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False
    #: The forms of video and audio this API takes natively ("file", "url", "frames"),
    #: for the models the catalog marks as taking them. A video of frames goes to a model
    #: that takes images but not video as those images (``prepare``).
    video_forms: ClassVar[frozenset[MediaForm]] = frozenset()
    audio_forms: ClassVar[frozenset[MediaForm]] = frozenset()
    #: The recordings' MIME types the API takes inline; None: any this playground takes.
    audio_types: ClassVar[frozenset[str] | None] = None

    retry_policy: ClassVar[RetryPolicy] = RetryPolicy()

    @classmethod
    def clean_params(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        return clean_params(cls.params, values)

    @classmethod
    def credential_parts(cls) -> tuple[CredentialPart, ...]:
        """What a saved credential for this provider holds, in the order a form asks for
        it: the key (when the provider takes one), then the extra parts. Empty for a
        provider that takes no credentials at all."""
        parts = []
        if cls.key_env:
            label = cls.credential_labels.get("api_key", "API key")
            parts.append(CredentialPart("api_key", label, cls.needs_key, secret=True))
        for name in cls.extra_credentials:
            label = cls.credential_labels.get(name, name.replace("_", " ").capitalize())
            required = name not in cls.optional_credentials
            parts.append(CredentialPart(name, label, required, secret=name in SECRET_PARTS))
        return tuple(parts)

    @classmethod
    def check_params(cls, model: str, params: Mapping[str, Any]) -> None:
        """Refuse, with :class:`ParamError`, parameters this model does not take (some
        reasoning models refuse a temperature, for instance). Nothing by default."""

    def open_stream(self, client: httpx.AsyncClient, request: ChatRequest) -> AsyncIterator[Event]:
        """Yield events for one answer; raise :class:`ProviderError` on failure.

        Must not yield :class:`Failure`. Ending without :class:`Finish` means the stream was
        cut; :meth:`stream` reports that.
        """
        raise NotImplementedError

    def base_url(self, request: ChatRequest) -> str:
        return (request.base_url or self.default_base_url).rstrip("/")

    def prepare(self, request: ChatRequest) -> ChatRequest:
        """The request as this API can take it: a video of frames becomes its images where
        the API takes no frames; a video or recording in a form the API does not take is
        refused before any call (the Send form refuses it first; this is the last word)."""
        if not request.videos and not request.audios:
            return request
        messages = []
        for message in request.messages:
            if isinstance(message.content, str):
                messages.append(message)
                continue
            parts: list[Part] = []
            for part in message.content:
                if isinstance(part, VideoPart) and part.form not in self.video_forms:
                    if part.form != "frames" or not self.supports_images:
                        raise self.media_refused("video", part.form)
                    parts.extend(part.frames)
                elif isinstance(part, AudioPart) and part.form not in self.audio_forms:
                    raise self.media_refused("audio", part.form)
                elif isinstance(part, AudioPart) and not self.takes_audio_type(part):
                    raise ProviderError(
                        ErrorKind.BAD_REQUEST,
                        f"{self.display_name} takes recordings as {self.audio_type_names()} only.",
                        permanent=True,
                    )
                else:
                    parts.append(part)
            messages.append(Message(message.role, tuple(parts)))
        return dataclasses.replace(request, messages=tuple(messages))

    @classmethod
    def takes_audio_type(cls, part: AudioPart) -> bool:
        return part.form != "file" or cls.audio_types is None or part.mime_type in cls.audio_types

    @classmethod
    def audio_type_names(cls) -> str:
        names = sorted(AUDIO_FORMATS.get(t, t).upper() for t in cls.audio_types or ())
        return " or ".join([", ".join(names[:-1]), *names[-1:]] if len(names) > 2 else names)

    def media_refused(self, kind: str, form: MediaForm) -> ProviderError:
        how = {"file": "as a file", "url": "by web address", "frames": "as frames"}[form]
        what = "a video" if kind == "video" else "a recording"
        return ProviderError(
            ErrorKind.BAD_REQUEST,
            f"{self.display_name} cannot take {what} {how}.",
            permanent=True,
        )

    def check_credentials(self, request: ChatRequest) -> None:
        if self.needs_key and not request.credentials.api_key:
            hint = f" Set {self.key_env} or add a key." if self.key_env else ""
            raise ProviderError(
                ErrorKind.AUTH, f"No API key for {self.display_name}.{hint}", permanent=True
            )

    def not_called(self, error: ParamError) -> ProviderError:
        """A parameter refused before any call, as the permanent error the person sees."""
        return ProviderError(
            ErrorKind.BAD_REQUEST, f"{self.display_name} was not called: {error}", permanent=True
        )

    def require(self, what: str, parts: Sequence[tuple[str | None, str]]) -> None:
        """Refuse, naming the variables to set, credentials with an empty part: ``parts``
        are (value, environment variable) pairs and ``what`` says what all of them are,
        as in "{display_name} needs {what}: set …"."""
        missing = [env for value, env in parts if not value]
        if missing:
            raise ProviderError(
                ErrorKind.AUTH,
                f"{self.display_name} needs {what}: set {', '.join(missing)}.",
                permanent=True,
            )

    async def stream(
        self,
        client: httpx.AsyncClient,
        request: ChatRequest,
        *,
        sleep: Sleep = asyncio.sleep,
        on_retry: Callable[[int, float, ProviderError], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Yield the answer's events; the last one is :class:`Finish` or :class:`Failure`.

        Retryable errors before the first event are retried with exponential backoff that
        honours Retry-After, at most ``retry_policy.attempts`` tries in all. The tries share
        one first-byte wait (``limits.first_byte_seconds``): the time each takes before
        its answer starts (waiting for its first byte, an error, a silence) is taken off
        what the next may wait, and none is made once it is used up. So a server that
        accepts and never answers holds the answer for that wait once, not once a try.
        """
        policy = self.retry_policy
        clock = asyncio.get_running_loop().time
        left = request.first_byte_wait
        waited = 0.0
        attempt = 0
        try:
            request = self.prepare(request)
        except ProviderError as error:
            yield self._failure(error, 1, 0.0)
            return
        while True:
            attempt += 1
            started = False
            finished = False
            began = clock()
            try:
                self.check_credentials(request)
                events = self.open_stream(client, replace(request, first_byte_left=left))
                # The answer's bounds, counted afresh on each try (a retry starts over).
                room = request.limits.answer_chars
                tool_calls = ToolCallBudget(self.display_name, request.limits)
                try:
                    async for event in events:
                        started = True
                        if isinstance(event, TextDelta | ReasoningDelta):
                            if len(event.text) > room:
                                if room:
                                    yield type(event)(event.text[:room])
                                raise answer_too_long(request.limits)
                            room -= len(event.text)
                        elif isinstance(event, ToolCall):
                            tool_calls.call()
                            tool_calls.add(event.name)
                            tool_calls.add(event.arguments)
                        elif isinstance(event, Finish):
                            finished = True
                        yield event
                finally:
                    # Close the adapter's generator (and so its HTTP response) now, also when
                    # our caller closes us early; left to the garbage collector it would
                    # happen later, in another task.
                    aclose = getattr(events, "aclose", None)
                    if aclose is not None:
                        await aclose()
                if not finished:
                    raise ProviderError(
                        ErrorKind.NETWORK,
                        f"The connection to {self.display_name} was cut mid-answer"
                        if started
                        else f"{self.display_name} closed the stream without an answer",
                        permanent=False,
                    )
                return
            except ProviderError as error:
                left -= clock() - began
                if error.permanent or started or attempt >= policy.attempts or left <= 0:
                    yield self._failure(error, attempt, waited)
                    return
                delay = policy.delay(attempt, error.retry_after)
                if on_retry is not None:
                    await on_retry(attempt, delay, error)
                await sleep(delay)
                waited += delay
            except (httpx.TransportError, httpx.StreamError) as exc:
                cut = network_error(self.display_name, exc, started=started)
                left -= clock() - began
                if started or attempt >= policy.attempts or left <= 0:
                    yield self._failure(cut, attempt, waited)
                    return
                delay = policy.delay(attempt, None)
                if on_retry is not None:
                    await on_retry(attempt, delay, cut)
                await sleep(delay)
                waited += delay
            except Exception as exc:  # a bug in an adapter must still end the pane clearly
                log.exception("%s adapter failed", self.display_name)
                yield Failure(
                    ErrorKind.UPSTREAM,
                    f"The {self.display_name} answer could not be read "
                    f"({type(exc).__name__}); this is a bug in the playground",
                    True,
                )
                return

    @staticmethod
    def _failure(error: ProviderError, attempts: int, waited: float) -> Failure:
        message = error.message
        if attempts > 1:
            message += f" — retried {attempts - 1} time{'s' if attempts > 2 else ''}"
            message += f" over {waited:.0f} s"
        return Failure(error.kind, message, error.permanent, error.status)
