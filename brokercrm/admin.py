"""Admin building blocks shared by every app, and the admin site's titles.

- `ScopedAdmin`: rows that belong to a client go through the one permission policy
  (brokercrm.policy), so a staff account manager sees only their book in admin too, and
  an object outside the user's scope answers 404 like everywhere else.
- `ReadOnlyAdminMixin`: view-only admin for append-only data that ingestion writes.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.contrib import admin
from django.db.models import ForeignKey, Model, QuerySet
from django.forms import ModelChoiceField
from django.http import Http404, HttpRequest
from django.utils.translation import gettext_lazy as _

from brokercrm.policy import scope_queryset, visible_clients

admin.site.site_header = _("BrokerCRM administration")
admin.site.site_title = _("BrokerCRM admin")
admin.site.index_title = _("Reference data, users and corrections")


class ScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose rows are limited to the clients the user may see.

    `client_scope_prefix` is the path from the model to its client, as in
    `brokercrm.policy.scope_queryset`: "" for Client itself, "client__" for rows of a client.
    Foreign keys named in `scoped_client_fields` offer (and accept) only visible clients,
    so a form cannot attach a row to someone else's client by posting its id.
    """

    client_scope_prefix: str = "client__"
    scoped_client_fields: tuple[str, ...] = ("client",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_queryset(request.user, super().get_queryset(request), prefix=self.client_scope_prefix)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Model:
        # Django's admin answers a missing object with a redirect to the index and a message
        # naming the id; the policy says an out-of-scope client does not exist: plain 404.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} matches the given query.")
        return obj

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.name in self.scoped_client_fields:
            kwargs["queryset"] = visible_clients(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdminMixin:
    """View-only admin: nobody adds, changes or deletes these rows here, not even a superuser.

    For the append-only ledger: ingestion writes it, and a correction is a reversing row
    brought in by ingestion, never an edit in admin.
    """

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


# The run records' admin lives with the pipeline (brokercrm/nightly/); admin.autodiscover()
# only imports this module, so register it from here.
import_module("brokercrm.nightly.admin")
