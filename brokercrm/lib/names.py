"""People's names as they are written: a Chinese name family name first with no space (陈瑶文),
others given name first (Alice Wang). Django's get_full_name() always gives "first last", so a
Chinese account manager read "瑶文 陈" in the header, on task lines and on the leaderboard."""

from __future__ import annotations

import re
from typing import Any

# CJK unified ideographs (with extension A and the compatibility block) and extension B on.
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def person_name(user: Any) -> str:
    """The user's name for display; the username when no name is set; "" for no user."""
    if user is None:
        return ""
    first = (getattr(user, "first_name", "") or "").strip()
    last = (getattr(user, "last_name", "") or "").strip()
    name = f"{last}{first}" if _CJK.search(first + last) else f"{first} {last}".strip()
    return name or user.get_username()
