"""Reading the Send form: the panes (model and parameters each), the system prompt and the
prompt. Every problem becomes a sentence; nothing is saved unless all panes are valid."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

from playground.attachments import (
    MAX_IMAGE_BYTES,
    MAX_IMAGES,
    AttachmentError,
    parse_images,
    parse_tools,
)
from playground.catalog import CatalogModel
from playground.credentials import KeyChoice, KeyChooser, KeyRefused, keyed_providers
from playground.media import AttachedMedia, read_media
from playground.media_limits import (
    MAX_AUDIO_BYTES,
    MAX_AUDIOS,
    MAX_FRAME_BYTES,
    MAX_FRAMES,
    MAX_VIDEO_BYTES,
    MAX_VIDEOS,
)
from playground.models import ContextPolicy, Team
from playground.own_models import models_for_user, parse_model_key
from playground.teams import active_team
from providers.base import ParamError


@dataclass
class PaneSpec:
    position: int
    model_key: str
    model: CatalogModel | None
    raw_params: dict[str, str]
    params: dict[str, Any] = field(default_factory=dict)
    picked_key: int | None = None  # the credential the person picked for this pane
    key: KeyChoice = KeyChoice("")


@dataclass
class Compose:
    prompt: str
    system_prompt: str
    panes: list[PaneSpec]
    errors: list[str]
    tools: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    team: Team | None = None  # the person's active team
    # The positions the turn goes to (the session composer's "Ask" ticks); None: every pane.
    asked: list[int] | None = None
    context_policy: str | None = None  # a new choice of the session's policy, if any
    same_params: bool = False  # "Same parameters for every pane" was on
    # Videos and recordings (playground.media): the turn's entries and the files to keep.
    media: AttachedMedia = field(default_factory=lambda: AttachedMedia([], []))

    def asking(self) -> list[PaneSpec]:
        """The panes this turn goes to; the others keep their settings and sit it out."""
        if self.asked is None:
            return self.panes
        return [p for p in self.panes if p.position in self.asked]


def pane_positions(data: QueryDict) -> list[int]:
    positions: list[int] = []
    for raw in data.getlist("pane"):
        # Three digits at most: a longer number is no pane (and one of over 4,300 digits
        # is refused by int() itself, with an error instead of a sentence).
        if raw.isascii() and raw.isdigit() and len(raw) <= 3 and int(raw) not in positions:
            positions.append(int(raw))
    return positions


def picked_models(data: QueryDict, positions: list[int]) -> list[str]:
    return [data.get(f"pane-{position}-model", "") for position in positions]


def read_pane(data: QueryDict, position: int, models: dict[str, CatalogModel]) -> PaneSpec:
    """One pane of the form; ``models``: what this person may pick
    (``endpoints.models_for_user``)."""
    prefix = f"pane-{position}-"
    key = data.get(prefix + "model", "")
    model = models.get(key)
    raw = {
        name[len(prefix) + 2 :]: str(value)
        for name, value in data.items()
        if name.startswith(prefix + "p-")
    }
    picked = data.get(prefix + "credential", "")
    picked_key = int(picked) if picked.isascii() and picked.isdigit() and len(picked) < 19 else None
    return PaneSpec(position, key, model, raw, picked_key=picked_key)


def same_params(data: QueryDict) -> bool:
    """Whether the composer's "Same parameters for every pane" toggle is on."""
    return data.get("same_params", "") == "on"


def apply_first_pane_params(panes: list[PaneSpec]) -> None:
    """The first pane's parameters, as typed, for every pane: each other pane takes the
    ones its model has (a model without one ignores it) and keeps its own for the rest."""
    if not panes:
        return
    first = panes[0].raw_params
    for pane in panes[1:]:
        if pane.model is None:
            continue
        names = {p.name for p in pane.model.params}
        pane.raw_params = {
            **pane.raw_params,
            **{name: value for name, value in first.items() if name in names},
        }


def read_attachments(
    data: QueryDict, files: MultiValueDict[str, UploadedFile] | None, errors: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    tools: list[dict[str, Any]] = []
    images: list[dict[str, str]] = []
    try:
        tools = parse_tools(data.get("tools", ""))
    except AttachmentError as error:
        errors.append(str(error))
    uploads = files.getlist("images") if files is not None else []
    try:
        if len(uploads) > MAX_IMAGES:
            raise AttachmentError(f"Attach at most {MAX_IMAGES} images.")
        images = parse_images(
            data.get("image_urls", ""),
            [(u.name or "image", u.read(MAX_IMAGE_BYTES + 1)) for u in uploads],
        )
    except AttachmentError as error:
        errors.append(str(error))
    return tools, images


def read_attached_media(
    data: QueryDict, files: MultiValueDict[str, UploadedFile] | None, errors: list[str]
) -> AttachedMedia:
    """The turn's videos and recordings; each upload read at most one byte past its limit,
    and no more files than the limit plus one (the sentence names the limit)."""

    def uploads(name: str, most: int, size: int) -> list[tuple[str, bytes]]:
        given = files.getlist(name)[: most + 1] if files is not None else []
        return [(u.name or name, u.read(size + 1)) for u in given]

    try:
        return read_media(
            data.get("video_urls", ""),
            data.get("audio_urls", ""),
            uploads("videos", MAX_VIDEOS, MAX_VIDEO_BYTES),
            uploads("audios", MAX_AUDIOS, MAX_AUDIO_BYTES),
            uploads("video_frames", MAX_FRAMES, MAX_FRAME_BYTES),
        )
    except AttachmentError as error:
        errors.append(str(error))
        return AttachedMedia([], [])


def read_compose(
    data: QueryDict, files: MultiValueDict[str, UploadedFile] | None, user: Any
) -> Compose:
    """The form as ``user`` sent it: a model that is not theirs to pick is unknown."""
    prompt = data.get("prompt", "")
    system_prompt = data.get("system_prompt", "")
    errors: list[str] = []
    limit = settings.PLAYGROUND_MAX_PROMPT_CHARS
    if not prompt.strip():
        errors.append("Write a prompt first.")
    elif len(prompt) > limit:
        errors.append(f"The prompt is {len(prompt):,} characters long; the limit is {limit:,}.")
    if len(system_prompt) > limit:
        errors.append(f"The system prompt is longer than {limit:,} characters.")
    positions = pane_positions(data)
    if not positions:
        errors.append("Add at least one model.")
    elif len(positions) > settings.PLAYGROUND_MAX_PANES:
        errors.append(f"Compare at most {settings.PLAYGROUND_MAX_PANES} models at once.")
    tools, images = read_attachments(data, files, errors)
    media = read_attached_media(data, files, errors)
    positions = positions[: settings.PLAYGROUND_MAX_PANES]
    asked = None
    if data.get("asking"):  # the session composer ticks the panes a follow-up goes to
        asked = [p for p in positions if data.get(f"pane-{p}-ask")]
        if positions and not asked:
            errors.append("Tick at least one pane to ask.")
    policy = data.get("context_policy") or None
    if policy is not None and policy not in ContextPolicy.values:
        errors.append("Pick what the models see of the conversation from the list.")
    models = models_for_user(user, picked=picked_models(data, positions))
    panes = [read_pane(data, p, models) for p in positions]
    if same_params(data):
        apply_first_pane_params(panes)
    team = active_team(user)
    chooser = key_chooser(user, team, panes)
    for number, pane in enumerate(panes, start=1):
        if pane.model is None:
            errors.append(f"Pane {number}: {unknown_model(pane.model_key)}")
            continue
        try:
            pane.key = chooser.choose(pane.model, pane.picked_key)
        except KeyRefused as refused:
            errors.append(f"Pane {number}: {refused}")
            continue
        # Said before the call, not after: a model that cannot take what the turn carries.
        if images and not pane.model.vision:
            errors.append(f"Pane {number}: {pane.model.display_name} cannot take images.")
        elif any("url" in i for i in images) and not pane.model.provider_class.image_urls:
            errors.append(
                f"Pane {number}: {pane.model.display_name} takes images only as uploads, "
                "not by web address."
            )
        if tools and not pane.model.tools:
            errors.append(f"Pane {number}: {pane.model.display_name} cannot call tools.")
        try:
            pane.params = pane.model.clean_params(pane.raw_params)
        except ParamError as error:
            errors.append(f"Pane {number}: {error}")
    return Compose(
        prompt,
        system_prompt,
        panes,
        errors,
        tools,
        images,
        team,
        asked,
        policy,
        same_params(data),
        media,
    )


def key_chooser(user: Any, team: Team | None, panes: list[PaneSpec]) -> KeyChooser:
    """The keys this person may use for the panes' providers: one query, none when no
    pane's model takes a key (the local model, Echo) and none was picked."""
    providers = {
        p.model.provider
        for p in panes
        if p.model is not None
        and not p.model.key_scope
        and (p.model.provider_class.credential_parts() or p.picked_key is not None)
    }
    picked = any(p.picked_key is not None for p in panes)
    if not picked:
        providers &= keyed_providers()
    if not providers or user is None or not user.is_authenticated:
        return KeyChooser(getattr(user, "pk", 0) or 0, team.pk if team else None, [])
    return KeyChooser.load(user.pk, team.pk if team else None, providers)


def unknown_model(key: str) -> str:
    """Why a pane's model cannot be asked, in the person's words rather than our key."""
    own = parse_model_key(key)
    if own is not None:  # an endpoint deleted since, or one that is not theirs
        return f"{own[1]!r} is not a model of any of your endpoints; pick another model."
    return f"unknown model {key!r}."
