"""Videos and recordings uploaded with a turn: each file kept once on disk, named by its
SHA-256 (playground.media), and linked to every turn that carries it, so a forked session
shares the file and it goes only when no turn carries it any more."""

from __future__ import annotations

from django.db import models


class MediaFile(models.Model):
    sha256 = models.CharField(max_length=64, unique=True)
    mime_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    # Seconds, when the container says so cheaply (WAV, MP4); else empty.
    seconds = models.FloatField(null=True, blank=True)
    turns = models.ManyToManyField("playground.Turn", related_name="media_files", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "uploaded video or recording"

    def __str__(self) -> str:
        return f"{self.mime_type}, {self.size:,} bytes"
