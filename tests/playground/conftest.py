from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _clean_redis(clean_redis: Any) -> Any:
    return clean_redis
