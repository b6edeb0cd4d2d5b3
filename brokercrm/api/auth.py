"""Token authentication for other systems: `POST /api/v1/auth/token/`.

Browsers use the session; back-office and trading systems exchange a username and
password for a DRF token once and send `Authorization: Token <key>` afterwards.

The password goes through `django.contrib.auth.authenticate(request=...)`, so the
django-axes backend sees the attempt: failures count towards the username lockout, and a
locked-out username gets no token even with the right password.
"""

from __future__ import annotations

from axes.helpers import get_cool_off
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from brokercrm.api.throttling import AuthRateThrottle

BAD_CREDENTIALS = "Unable to log in with the username and password given."
LOCKED_OUT = "Too many failed logins for this username; try again later."


class TokenLoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")


class LockedOut(Throttled):
    """The username is locked out by django-axes after repeated failures."""

    default_detail = LOCKED_OUT
    default_code = "locked_out"


class ObtainTokenView(APIView):
    # No authentication: SessionAuthentication would demand a CSRF token from systems
    # that have no session, and a request without credentials needs none.
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (AuthRateThrottle, *api_settings.DEFAULT_THROTTLE_CLASSES)

    @extend_schema(
        operation_id="auth_token_create",
        tags=["auth"],
        summary="Exchange a username and password for an API token",
        description=(
            "Returns the user's token (the same token on every call until it is revoked in the admin). "
            "Failed attempts count towards the login lockout shared with the sign-in page; this endpoint "
            "is also rate-limited per client address."
        ),
        request=TokenLoginSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Missing fields or wrong username/password."),
            429: OpenApiResponse(OpenApiTypes.OBJECT, description="Rate limit hit, or the username is locked out."),
        },
    )
    def post(self, request: Request) -> Response:
        payload = TokenLoginSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = authenticate(
            request=request,
            username=payload.validated_data["username"],
            password=payload.validated_data["password"],
        )
        if user is None:
            # The axes backend flags the request when the username is (now) locked out.
            if getattr(request, "axes_locked_out", False):
                cool_off = get_cool_off(request)
                raise LockedOut(wait=cool_off.total_seconds() if cool_off else None)
            raise ValidationError({"non_field_errors": [BAD_CREDENTIALS]}, code="authorization")
        # A successful sign-in as far as axes (resets the failure count) and last_login go.
        user_logged_in.send(sender=type(user), request=request, user=user)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
