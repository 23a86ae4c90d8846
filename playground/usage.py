"""Token counts when a provider does not report them (cut streams, llama.cpp, some APIs).

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
