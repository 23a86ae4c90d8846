"""Token counts when a provider does not report them (cut streams, llama.cpp, some APIs),
and the speed shown from them.

A rough estimate, marked as estimated wherever it is shown: about four characters per
token for Latin text, one token per CJK character.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    rest = len(text) - cjk
    return cjk + max(1, round(rest / 4)) if rest else cjk


def tokens_per_second(
    tokens: int | None, ttft_ms: int | None, elapsed_ms: int | None, waited_ms: int
) -> float | None:
    """Speed of streaming: after the first token, not counting any wait before the call.

    One formula for the live status line and the final row, so the two agree.
    """
    if not tokens or ttft_ms is None or elapsed_ms is None:
        return None
    streaming_ms = elapsed_ms - waited_ms - ttft_ms
    return tokens / (streaming_ms / 1000) if streaming_ms > 0 else None
