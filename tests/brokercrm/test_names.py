"""People's names as they are written (brokercrm/lib/names.py): Chinese family name first, no
space; others given name first; the username when no name is set."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from brokercrm.lib.names import person_name
from tests import factories


@pytest.mark.parametrize(
    ("first", "last", "shown"),
    [
        ("瑶文", "陈", "陈瑶文"),
        ("Alice", "Wang", "Alice Wang"),
        ("", "欧阳", "欧阳"),
        ("𠀀明", "王", "王𠀀明"),  # a character outside the basic block (extension B)
        ("  Bob ", " Li", "Bob Li"),
        ("", "", "am_0042"),
    ],
)
def test_a_name_is_written_as_people_write_it(first: str, last: str, shown: str) -> None:
    user = get_user_model()(username="am_0042", first_name=first, last_name=last)
    assert person_name(user) == shown
    assert person_name(None) == ""


@pytest.mark.django_db
def test_a_chinese_account_manager_reads_their_name_right_everywhere(client) -> None:
    manager = factories.AccountManagerFactory(user__first_name="瑶文", user__last_name="陈")
    factories.ClientFactory(account_manager=manager, name="王芳")
    assert str(manager) == "陈瑶文"
    client.force_login(manager.user)
    text = client.get("/").content.decode()
    assert '<span class="whoami__name">陈瑶文</span>' in text
    assert "瑶文 陈" not in text
