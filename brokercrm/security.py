"""The security log (logger `brokercrm.security`): failed logins, lockouts and denied accesses.

One line per event, key=value, with who (username and user id), from where (client IP) and
what (method, path, status, reason). Never a password, a token, a request body or a query
parameter's value (only its name).

- failed login: Django's `user_login_failed` signal (the login page, admin and the API
  token endpoint all authenticate through it), with the username tried and the IP;
- lockout: django-axes' `user_locked_out` signal;
- denied access: every 401 or 403 answer of a page or the API (the middleware below),
  with the reason the view gave; and an API lookup of an object that exists but lies outside
  the user's scope (answered 404 on purpose, logged as `out_of_scope` by brokercrm.policy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("brokercrm.security")

_REASON_ATTRIBUTE = "_security_denied_reason"


def client_ip(request: HttpRequest | None) -> str:
    """The client's address as Django sees it (REMOTE_ADDR; a trusted proxy sets it)."""
    if request is None:
        return "-"
    return request.META.get("REMOTE_ADDR") or "-"


def _who(request: HttpRequest | None) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "anonymous"
    return f"{user.get_username()}#{user.pk}"


def _clean(text: object, limit: int = 200) -> str:
    """One line, bounded, quotes escaped: log lines cannot be forged from request data."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")[:limit]


def _path(request: HttpRequest) -> str:
    """The path and the names (not the values) of its query parameters: a value may be an
    identifier someone searched for (?q=<ID number>), which has no place in a log."""
    names = sorted(set(request.GET))
    return request.path + ("?" + "&".join(names) if names else "")


def log_denied(request: HttpRequest | None, *, status: int, reason: str) -> None:
    path = _path(request) if request is not None else "-"
    method = request.method if request is not None else "-"
    logger.warning(
        'access denied: status=%s user=%s ip=%s method=%s path="%s" reason="%s"',
        status,
        _who(request),
        client_ip(request),
        method,
        _clean(path),
        _clean(reason),
    )


def log_out_of_scope(user: Any, *, model: str, lookup: dict[str, object]) -> None:
    """An existing object outside the user's scope was asked for (answered 404, see brokercrm.policy)."""
    who = f"{user.get_username()}#{user.pk}" if getattr(user, "is_authenticated", False) else "anonymous"
    wanted = " ".join(f"{key}={value}" for key, value in sorted(lookup.items()))
    logger.warning('access denied: status=404 user=%s reason="out_of_scope: %s %s"', who, model, _clean(wanted))


@receiver(user_login_failed, dispatch_uid="brokercrm.security.login_failed")
def _login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    username = credentials.get("username") or credentials.get("email") or ""
    logger.warning(
        'login failed: username="%s" ip=%s path="%s" user_agent="%s"',
        _clean(username, 150),
        client_ip(request),
        _clean(request.path if request is not None else "-"),
        _clean(request.META.get("HTTP_USER_AGENT", "") if request is not None else "", 120),
    )


def _locked_out(
    sender: Any, request: HttpRequest | None = None, username: str = "", ip_address: str = "", **kw: Any
) -> None:
    logger.warning(
        'login locked out: username="%s" ip=%s path="%s"',
        _clean(username or "", 150),
        ip_address or client_ip(request),
        _clean(request.path if request is not None else "-"),
    )


def connect_signals() -> None:
    """Called from the app config (axes' signal module needs the apps loaded)."""
    from axes.signals import user_locked_out

    user_locked_out.connect(_locked_out, dispatch_uid="brokercrm.security.locked_out")


class DeniedAccessLogMiddleware:
    """Logs every 401/403 answer with the user, path and the reason given by the view
    (Django's PermissionDenied message, DRF's `detail`, or the CSRF failure)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code in (401, 403):
            log_denied(request, status=response.status_code, reason=self._reason(request, response))
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if isinstance(exception, PermissionDenied):
            setattr(request, _REASON_ATTRIBUTE, str(exception) or "permission denied")

    @staticmethod
    def _reason(request: HttpRequest, response: HttpResponse) -> str:
        reason = getattr(request, _REASON_ATTRIBUTE, None)
        if reason:
            return reason
        data = getattr(response, "data", None)  # a DRF Response
        if isinstance(data, dict) and data.get("detail"):
            code = getattr(data["detail"], "code", "")
            return f"{code}: {data['detail']}" if code else str(data["detail"])
        if response.status_code == 401:
            return "not authenticated"
        # A view that answers 403 itself (e.g. the dashboard's page for roles without
        # aggregates), or a CSRF failure (which django.security.csrf also logs, with its reason).
        return "forbidden by the page (or a CSRF failure: see django.security.csrf)"
