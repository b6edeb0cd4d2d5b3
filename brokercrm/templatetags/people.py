"""{% load people %}: {{ user|person_name }} (brokercrm.lib.names.person_name)."""

from __future__ import annotations

from typing import Any

from django import template

from brokercrm.lib.names import person_name as _person_name

register = template.Library()


@register.filter
def person_name(user: Any) -> str:
    return _person_name(user)
