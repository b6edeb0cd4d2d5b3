"""Admin for the client data.

Ops staff maintain reference data (branches, teams, account managers, instruments) and
client records here. Rows of a client go through the permission policy (ScopedAdmin);
the ledger (trades, cash flows, asset snapshots) is view-only; KYC ID numbers are masked
for everyone outside compliance (and encrypted at rest: compliance finds a profile by its
exact ID number through the keyed hash, never with a LIKE on the column). KYC changes and
every page that shows a compliance officer unmasked ID numbers are recorded in the audit
trail (compliance.audit).

Built for a large book: foreign keys use autocomplete (never a select of a million
clients), list pages join what they display (list_select_related), and ledger searches
use exact lookups that hit the unique indexes instead of scanning with LIKE.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from brokercrm.admin import ReadOnlyAdminMixin, ScopedAdmin
from brokercrm.lib.names import person_name
from brokercrm.roles import COMPLIANCE_OFFICER, has_role
from clients.models import (
    AccountManager,
    AssetSnapshot,
    Branch,
    CashFlow,
    Client,
    ClientAssignment,
    ClientLogin,
    Instrument,
    Interaction,
    KYCProfile,
    RiskAssessment,
    Team,
    Trade,
)
from compliance.services import KYC_AUDITED_FIELDS, id_number_view_audit, kyc_change_audit

# --- Reference data -------------------------------------------------------------------


@admin.register(Branch)
class BranchAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "city"]
    list_filter = ["city"]
    search_fields = ["code", "name", "city"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "branch", "lead"]
    list_filter = ["branch"]
    list_select_related = ["branch", "lead"]
    search_fields = ["name", "branch__code", "branch__name"]
    autocomplete_fields = ["branch", "lead"]


@admin.register(AccountManager)
class AccountManagerAdmin(admin.ModelAdmin):
    list_display = ["employee_no", "full_name", "username", "team", "branch", "phone", "is_active"]
    list_filter = ["is_active", "team__branch"]
    list_select_related = ["user", "team__branch"]
    search_fields = ["employee_no", "user__username", "user__first_name", "user__last_name"]
    autocomplete_fields = ["user", "team"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # __str__ is the user's name: autocomplete results on client forms need the join too.
        return super().get_queryset(request).select_related("user")

    @admin.display(description=_("name"), ordering="user__last_name")
    def full_name(self, obj: AccountManager) -> str:
        return person_name(obj.user)

    @admin.display(description=_("username"), ordering="user__username")
    def username(self, obj: AccountManager) -> str:
        return obj.user.get_username()

    @admin.display(description=_("branch"), ordering="team__branch__code")
    def branch(self, obj: AccountManager) -> Branch:
        return obj.team.branch


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = [
        "symbol",
        "name",
        "asset_class",
        "market",
        "board",
        "industry",
        "cap_class",
        "is_blue_chip",
        "is_st",
        "risk_level",
    ]
    list_filter = ["asset_class", "market", "cap_class", "is_blue_chip", "is_st", "risk_level", "board"]
    search_fields = ["symbol", "name", "industry"]


# --- Clients and what belongs to them -------------------------------------------------


class AssignmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The client's managers and branches over time, kept by database triggers: read only."""

    model = ClientAssignment
    fields = ["account_manager", "branch", "valid_from", "valid_to"]
    readonly_fields = fields
    ordering = ["-id"]
    extra = 0
    verbose_name = _("assignment")
    verbose_name_plural = _("assignment history")


@admin.register(Client)
class ClientAdmin(ScopedAdmin):
    client_scope_prefix = ""
    inlines = [AssignmentInline]
    scoped_client_fields = ()
    list_display = ["client_no", "name", "kind", "branch", "account_manager", "status", "opened_on", "closed_on"]
    # opened_on as a list filter, not a date_hierarchy: the hierarchy scans the whole table
    # (MIN/MAX, then SELECT DISTINCT of truncated dates) on every list page.
    list_filter = ["status", "kind", "branch", "opened_on"]
    list_select_related = ["branch", "account_manager__user"]
    # client_no exactly (unique index) or part of the name.
    search_fields = ["client_no__exact", "name", "phone__exact", "email__iexact"]
    autocomplete_fields = ["branch", "account_manager"]
    show_full_result_count = False
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["client_no", "name", "kind", "status"]}),
        (_("Contact"), {"fields": ["phone", "email", "address", "birthday"]}),
        (_("Account"), {"fields": ["branch", "account_manager", "opened_on", "closed_on"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]


def _sees_id_numbers(request: HttpRequest) -> bool:
    """Only compliance officers see a client's full ID document number."""
    return has_role(request.user, COMPLIANCE_OFFICER)


@admin.register(KYCProfile)
class KYCProfileAdmin(ScopedAdmin):
    """KYC profiles. Outside compliance, the ID number is left out of the form entirely
    (so the raw value is never in the page, not even in a hidden input) and shown masked."""

    client_scope_prefix = "client__"
    list_filter = ["verification_status", "aml_risk", "sanctions_status", "is_pep", "id_type", "income_band"]
    list_select_related = ["client"]
    search_fields = ["client__client_no__exact", "client__name"]
    autocomplete_fields = ["client"]
    # Indexed column (kyc_next_review_due), so the hierarchy's MIN/MAX is an index lookup:
    # compliance browses "reviews due this month" from here.
    date_hierarchy = "next_review_due"

    def _id_field(self, request: HttpRequest) -> str:
        return "id_number" if _sees_id_numbers(request) else "masked_id_number"

    @admin.display(description=_("ID number"))
    def masked_id_number(self, obj: KYCProfile) -> str:
        return obj.id_number_masked

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return [
            "client",
            "id_type",
            self._id_field(request),
            "verification_status",
            "aml_risk",
            "sanctions_status",
            "is_pep",
            "next_review_due",
        ]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # Compliance finds a profile by its exact ID number, through the keyed hash (the column
        # itself is encrypted). Outside compliance, searching by ID number would let a user
        # confirm a number they cannot see.
        if search_term.strip() and _sees_id_numbers(request):
            found |= queryset.with_id_number(search_term)
        return found, may_have_duplicates

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # Django allows any URL filter on a local field (?id_number__startswith=110): the same
        # oracle as a search outside compliance, and meaningless on ciphertext (or its hash)
        # for everyone, so it is refused (400).
        if lookup.split("__")[0] in ("id_number", "id_number_hash"):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_fieldsets(self, request: HttpRequest, obj: KYCProfile | None = None) -> list[tuple[Any, dict[str, Any]]]:
        return [
            (None, {"fields": ["client"]}),
            (_("Identity document"), {"fields": ["id_type", self._id_field(request), "id_expiry", "nationality"]}),
            (_("Profile"), {"fields": ["occupation", "income_band", "net_worth_band", "source_of_funds"]}),
            (_("Screening"), {"fields": ["is_pep", "sanctions_status", "aml_risk", "verification_status"]}),
            (_("Review"), {"fields": ["last_review_on", "next_review_due", "updated_at"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: KYCProfile | None = None) -> list[str]:
        fields = ["updated_at"]
        if obj is not None:
            fields.append("client")  # a profile never moves to another client
        if not _sees_id_numbers(request):
            fields.append("masked_id_number")
        return fields

    def get_exclude(self, request: HttpRequest, obj: KYCProfile | None = None) -> list[str]:
        # Belt and braces with the fieldsets: the form class itself has no id_number field.
        return [] if _sees_id_numbers(request) else ["id_number"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A new profile needs the ID number, which only compliance may enter.
        return _sees_id_numbers(request) and super().has_add_permission(request)

    # --- Audit trail (compliance): KYC field changes and every view of an unmasked ID number.

    def save_model(self, request: HttpRequest, obj: KYCProfile, form: Any, change: bool) -> None:
        before = (
            KYCProfile.objects.filter(pk=obj.pk).values(*KYC_AUDITED_FIELDS).first() if change and obj.pk else None
        ) or {}
        super().save_model(request, obj, form, change)
        after = {name: getattr(obj, name) for name in KYC_AUDITED_FIELDS}
        kyc_change_audit(by=request.user, client=obj.client, kyc_id=obj.pk, old=before, new=after)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", None) and response.context_data.get("cl")
        if _sees_id_numbers(request) and changelist is not None:
            shown = [profile.client for profile in changelist.result_list]
            id_number_view_audit(by=request.user, clients=shown, where="admin KYC list")
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> Any:
        response = super().change_view(request, object_id, form_url, extra_context)
        original = getattr(response, "context_data", None) and response.context_data.get("original")
        if request.method == "GET" and _sees_id_numbers(request) and original is not None:
            id_number_view_audit(by=request.user, clients=[original.client], where="admin KYC profile")
        return response


@admin.register(RiskAssessment)
class RiskAssessmentAdmin(ScopedAdmin):
    client_scope_prefix = "client__"
    list_display = ["client", "risk_level", "score", "horizon", "experience_years", "assessed_on", "expires_on"]
    list_filter = ["risk_level", "horizon", "assessed_on", "expires_on"]
    list_select_related = ["client"]
    search_fields = ["client__client_no__exact", "client__name"]
    autocomplete_fields = ["client"]


@admin.register(Interaction)
class InteractionAdmin(ScopedAdmin):
    client_scope_prefix = "client__"
    list_display = ["occurred_at", "client", "channel", "direction", "outcome", "by"]
    # Interactions grow with every contact: a date filter, not a date_hierarchy (see ClientAdmin).
    list_filter = ["occurred_at", "channel", "direction"]
    list_select_related = ["client", "by"]
    search_fields = ["client__client_no__exact", "client__name"]
    autocomplete_fields = ["client", "by"]
    show_full_result_count = False
    readonly_fields = ["created_at"]

    def save_model(self, request: HttpRequest, obj: Interaction, form: Any, change: bool) -> None:
        if not change and obj.by_id is None:
            obj.by = request.user
        super().save_model(request, obj, form, change)


# --- The ledger: view only -------------------------------------------------------------
# The ledger tables are the biggest in the database: no date_hierarchy (see ClientAdmin);
# the date list filter ("today", "past 7 days", "this month" ...) is a range condition on
# an indexed column.


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    client_scope_prefix = "client__"
    list_display = [
        "trade_id",
        "executed_at",
        "client",
        "instrument",
        "side",
        "quantity",
        "price",
        "amount",
        "commission",
        "channel",
        "realized_pnl",
        "reverses",
    ]
    list_filter = ["executed_at", "side", "channel", "instrument__asset_class"]
    list_select_related = ["client", "instrument", "reverses"]
    search_fields = ["trade_id__exact", "client__client_no__exact", "instrument__symbol__exact"]
    autocomplete_fields = ["client", "instrument", "reverses"]
    show_full_result_count = False


@admin.register(CashFlow)
class CashFlowAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    client_scope_prefix = "client__"
    list_display = ["flow_id", "occurred_at", "client", "kind", "amount", "reverses"]
    list_filter = ["occurred_at", "kind"]
    list_select_related = ["client", "reverses"]
    search_fields = ["flow_id__exact", "client__client_no__exact"]
    autocomplete_fields = ["client", "reverses"]
    show_full_result_count = False


@admin.register(AssetSnapshot)
class AssetSnapshotAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    client_scope_prefix = "client__"
    list_display = ["as_of", "client", "cash", "market_value", "total"]
    list_filter = ["as_of"]
    list_select_related = ["client"]
    search_fields = ["client__client_no__exact"]
    autocomplete_fields = ["client"]
    show_full_result_count = False


@admin.register(ClientLogin)
class ClientLoginAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    """Daily sign-in counts as the trading platform exported them (imported, not edited)."""

    client_scope_prefix = "client__"
    list_display = ["day", "client", "channel", "logins"]
    list_filter = ["channel", "day"]
    list_select_related = ["client"]
    search_fields = ["client__client_no__exact"]
    autocomplete_fields = ["client"]
    show_full_result_count = False


# clients.ingest is a package inside this app, not an installed app, so admin.autodiscover()
# does not import its admin module: register its ModelAdmins from here.
import_module("clients.ingest.admin")
