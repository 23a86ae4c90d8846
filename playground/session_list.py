"""A person's sessions as the sidebar lists them, and what they do to them there: rename,
pin, delete and undo within the undo window. A deleted session is hidden at once and gone
for good once the window has passed (``purge_overdue``: a task scheduled at delete time,
and every read of the person's list, so nothing depends on the task alone)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from playground.catalog import CatalogModel
from playground.models import Pane, Session

PAGE = 50
TITLE_MAX = 200  # Session.title's max_length
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EMPTY_TITLE = "A title cannot be empty."
BAD_CURSOR = "That list position is not one this page gave; reload the page."


def undo_window() -> timedelta:
    return timedelta(seconds=settings.PLAYGROUND_UNDO_SECONDS)


@dataclass
class Item:
    """One session in the sidebar."""

    pk: int
    title: str
    pinned: bool
    updated_at: datetime
    models: list[str]


@dataclass
class Page:
    items: list[Item]
    more: str | None  # the cursor of the next page, when there is one


class BadCursor(ValueError):
    pass


def cursor_of(item: Item) -> str:
    """Where the next page starts: after this item, in the sidebar's order."""
    micros = (item.updated_at - EPOCH) // timedelta(microseconds=1)
    return f"{int(item.pinned)}.{micros}.{item.pk}"


def _after(cursor: str) -> Q:
    try:
        pinned, micros, pk = (int(part) for part in cursor.split("."))
        updated = EPOCH + timedelta(microseconds=micros)
    except (ValueError, OverflowError):
        raise BadCursor(BAD_CURSOR) from None
    if pinned not in (0, 1):
        raise BadCursor(BAD_CURSOR)
    later = Q(updated_at__lt=updated) | Q(updated_at=updated, pk__lt=pk)
    return Q(pinned=False) & later if not pinned else Q(pinned=False) | (Q(pinned=True) & later)


def page(owner_id: int, models: dict[str, CatalogModel], after: str | None = None) -> Page:
    """The person's sessions, pinned first and then the newest (by their last change), a
    page at a time; overdue deleted ones are purged first."""
    purge_overdue(owner_id=owner_id)
    rows = Session.objects.filter(owner_id=owner_id, deleted_at__isnull=True)
    if after:
        rows = rows.filter(_after(after))
    sessions = list(
        rows.order_by("-pinned", "-updated_at", "-pk").only("pk", "title", "pinned", "updated_at")[
            : PAGE + 1
        ]
    )
    more = len(sessions) > PAGE
    sessions = sessions[:PAGE]
    names = model_names([s.pk for s in sessions], models)
    items = [Item(s.pk, str(s), s.pinned, s.updated_at, names.get(s.pk, [])) for s in sessions]
    return Page(items, cursor_of(items[-1]) if more and items else None)


def model_names(session_ids: list[int], models: dict[str, CatalogModel]) -> dict[int, list[str]]:
    """The display names of each session's panes showing now (one query for them all)."""
    names: dict[int, list[str]] = {}
    rows = (
        Pane.objects.filter(session_id__in=session_ids, removed=False)
        .order_by("session_id", "position")
        .values_list("session_id", "model_key")
    )
    for session_id, key in rows:
        model = models.get(key)
        names.setdefault(session_id, []).append(model.display_name if model else key.split(":")[-1])
    return names


def item(session: Session, models: dict[str, CatalogModel]) -> Item:
    return Item(
        session.pk,
        str(session),
        session.pinned,
        session.updated_at,
        model_names([session.pk], models).get(session.pk, []),
    )


def clean_title(raw: str) -> tuple[str, str | None]:
    """The title as it will be saved, or a sentence saying why it cannot be."""
    title = " ".join(raw.split())
    if not title:
        return "", EMPTY_TITLE
    if len(title) > TITLE_MAX:
        return "", f"A title can be at most {TITLE_MAX} characters; this one has {len(title)}."
    return title, None


def rename(session: Session, title: str) -> None:
    # update(): renaming is not a change of the conversation, so it keeps its place.
    Session.objects.filter(pk=session.pk).update(title=title)
    session.title = title


def set_pinned(session: Session, pinned: bool) -> None:
    Session.objects.filter(pk=session.pk).update(pinned=pinned)
    session.pinned = pinned


def delete(session: Session) -> bool:
    """Hide the session (its rows stay until the undo window has passed). False when it was
    already deleted."""
    now = timezone.now()
    done = Session.objects.filter(pk=session.pk, deleted_at__isnull=True).update(deleted_at=now)
    session.deleted_at = now
    return bool(done)


def undo_delete(session: Session) -> str | None:
    """Bring a deleted session back as it was; a sentence when the window has passed."""
    cutoff = timezone.now() - undo_window()
    # Conditional, so that a purge deciding at the same moment cannot delete a session
    # that comes back (it locks the rows it deletes; this waits, then finds none).
    restored = Session.objects.filter(
        pk=session.pk, deleted_at=session.deleted_at, deleted_at__gte=cutoff
    ).update(deleted_at=None)
    if not restored:
        return too_late(session)
    session.deleted_at = None
    return None


def too_late(session: Session | None) -> str:
    seconds = settings.PLAYGROUND_UNDO_SECONDS
    name = f"'{session}'" if session is not None else "That session"
    return (
        f"{name} can no longer be restored: a deletion can be undone for "
        f"{seconds} second{'' if seconds == 1 else 's'} only."
    )


def seconds_left(session: Session) -> int:
    if session.deleted_at is None:
        return 0
    left = session.deleted_at + undo_window() - timezone.now()
    return max(0, int(left.total_seconds() + 0.999))


def purge_overdue(*, owner_id: int | None = None, session_id: int | None = None) -> int:
    """Delete for good the sessions deleted longer ago than the undo window (of one person,
    or one session); how many."""
    cutoff = timezone.now() - undo_window()
    overdue = Session.objects.filter(deleted_at__lt=cutoff)
    if owner_id is not None:
        overdue = overdue.filter(owner_id=owner_id)
    if session_id is not None:
        overdue = overdue.filter(pk=session_id)
    if not overdue.exists():
        return 0
    with transaction.atomic():
        # Locked and read again, so an undo that got in first keeps its session.
        ids = list(overdue.select_for_update().values_list("pk", flat=True))
        if not ids:
            return 0
        Session.objects.filter(pk__in=ids).delete()
    # Their videos and recordings go too, unless another turn (a fork) carries them.
    from playground.media import sweep

    sweep()
    return len(ids)
