"""Watch lists (CSV loads) and screening the clients against them.

CSV columns (header row required; UTF-8, or GB18030):
  entry_id       the list's own id of the entry (required, unique in the file)
  name           the name as listed (required): Chinese characters, pinyin or any Latin spelling
  aliases        other names, separated by "|"
  date_of_birth  YYYY-MM-DD, or YYYY when only the year is known (optional)
  countries      ISO 3166-1 alpha-2 codes separated by "|" (optional)
  remarks        free text (optional)

A load replaces the list: entries missing from the file are deactivated (kept, since past
matches and whitelists point at them). A file with any invalid row is rejected whole; the
error names the row, the column, the value and what was expected.

Screening is incremental: when a list changed since the last screening every client that
is not closed is screened; otherwise only clients whose name, birthday or KYC changed since.
Each client is compared only with the entries sharing a name key (compliance.matching).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clients.models import Client
from compliance import audit, conf
from compliance.matching import Candidate, CandidateIndex, name_form
from compliance.models import ComplianceMark, ScreeningMatch, WatchList, WatchListEntry

REQUIRED_COLUMNS = ("entry_id", "name")
OPTIONAL_COLUMNS = ("aliases", "date_of_birth", "countries", "remarks")
SCREENING_MARK = "screening"
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_ENTRY_FIELDS = ("name", "aliases", "birth_date", "birth_year", "countries", "remarks", "is_active")


@dataclass(frozen=True)
class RowError:
    row: int  # the header is row 1
    column: str
    value: str
    expected: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.value!r} - expected {self.expected}"


class WatchListImportError(ValueError):
    """The file was rejected; `errors` says where and why. Nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "; ".join(str(error) for error in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"Watch list rejected: {shown}{more}")


@dataclass
class ParsedEntry:
    external_id: str
    name: str
    aliases: list[str]
    birth_date: dt.date | None
    birth_year: int | None
    countries: list[str]
    remarks: str


@dataclass(frozen=True)
class LoadResult:
    watch_list: WatchList
    created: int
    updated: int
    deactivated: int
    unchanged: int


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise WatchListImportError([RowError(0, "", "", "text in UTF-8 or GB18030")])


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split("|") if part.strip()]


def parse_watch_list(data: bytes) -> list[ParsedEntry]:
    """The entries of a watch-list CSV; raises WatchListImportError listing every problem."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    header = next(reader, None)
    if not header:
        raise WatchListImportError([RowError(1, "", "", "a header row with entry_id and name")])
    columns = [name.strip().lower() for name in header]
    errors = [
        RowError(1, column, "", "this column in the header") for column in REQUIRED_COLUMNS if column not in columns
    ]
    errors += [
        RowError(1, column, column, f"one of {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
        for column in columns
        if column not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    ]
    if errors:
        raise WatchListImportError(errors)
    entries: list[ParsedEntry] = []
    seen: dict[str, int] = {}
    for number, values in enumerate(reader, start=2):
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(columns):
            errors.append(RowError(number, "", ",".join(values)[:80], f"{len(columns)} fields like the header"))
            continue
        row = {column: value.strip() for column, value in zip(columns, values, strict=True)}
        entry_id, name = row["entry_id"], row["name"]
        if not entry_id:
            errors.append(RowError(number, "entry_id", "", "the list's id of the entry"))
        elif len(entry_id) > 64:
            errors.append(RowError(number, "entry_id", entry_id[:80], "at most 64 characters"))
        elif entry_id in seen:
            errors.append(RowError(number, "entry_id", entry_id, f"an id not already used on row {seen[entry_id]}"))
        else:
            seen[entry_id] = number
        if not name:
            errors.append(RowError(number, "name", "", "the listed name"))
        elif len(name) > 200:
            errors.append(RowError(number, "name", name[:80], "at most 200 characters"))
        aliases = _split(row.get("aliases", ""))
        if any(len(alias) > 200 for alias in aliases):
            errors.append(RowError(number, "aliases", row["aliases"][:80], "aliases of at most 200 characters"))
        birth_date, birth_year = None, None
        raw_dob = row.get("date_of_birth", "")
        if raw_dob:
            try:
                if re.fullmatch(r"\d{4}", raw_dob):
                    birth_year = int(raw_dob)
                    if not 1850 <= birth_year <= timezone.localdate().year:
                        raise ValueError(raw_dob)
                else:
                    birth_date = dt.date.fromisoformat(raw_dob)
                    if birth_date > timezone.localdate():
                        raise ValueError(raw_dob)
            except ValueError:
                errors.append(RowError(number, "date_of_birth", raw_dob, "YYYY-MM-DD or YYYY, not in the future"))
        countries = [code.upper() for code in _split(row.get("countries", ""))]
        bad = [code for code in countries if not _COUNTRY.match(code)]
        if bad:
            errors.append(RowError(number, "countries", row["countries"], "ISO 3166-1 alpha-2 codes separated by |"))
        remarks = row.get("remarks", "")
        if len(remarks) > 300:
            errors.append(RowError(number, "remarks", remarks[:80], "at most 300 characters"))
        entries.append(ParsedEntry(entry_id, name, aliases, birth_date, birth_year, countries, remarks))
    if errors:
        raise WatchListImportError(errors)
    if not entries:
        raise WatchListImportError([RowError(2, "", "", "at least one entry after the header")])
    return entries


def watch_list_load(*, data: bytes, list_name: str, kind: str, by: object, source: str = "") -> LoadResult:
    """Load (replace) the watch list `list_name` from CSV bytes; audited. Raises
    WatchListImportError (nothing written) or ValueError for an unknown kind."""
    if kind not in WatchList.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(WatchList.Kind.values)}, not {kind!r}")
    if not list_name.strip() or len(list_name) > 80:
        raise ValueError("The list name must be 1 to 80 characters.")
    entries = parse_watch_list(data)
    digest = hashlib.sha256(data).hexdigest()
    by_name = by if isinstance(by, str) else getattr(by, "get_username", lambda: "")()
    with transaction.atomic():
        watch_list, _ = WatchList.objects.select_for_update().get_or_create(name=list_name, defaults={"kind": kind})
        if watch_list.kind != kind:
            raise ValueError(f"List {list_name!r} is a {watch_list.kind} list, not {kind}.")
        existing = {entry.external_id: entry for entry in watch_list.entries.all()}
        created, updated, unchanged = [], [], 0
        for parsed in entries:
            values = {
                "name": parsed.name,  # the keys are _ENTRY_FIELDS
                "aliases": parsed.aliases,
                "birth_date": parsed.birth_date,
                "birth_year": parsed.birth_year,
                "countries": parsed.countries,
                "remarks": parsed.remarks,
                "is_active": True,
            }
            current = existing.get(parsed.external_id)
            if current is None:
                created.append(WatchListEntry(watch_list=watch_list, external_id=parsed.external_id, **values))
            elif any(getattr(current, key) != value for key, value in values.items()):
                for key, value in values.items():
                    setattr(current, key, value)
                updated.append(current)
            else:
                unchanged += 1
        WatchListEntry.objects.bulk_create(created, batch_size=1000)
        WatchListEntry.objects.bulk_update(updated, list(_ENTRY_FIELDS), batch_size=1000)
        listed = {parsed.external_id for parsed in entries}
        gone = [entry.pk for key, entry in existing.items() if key not in listed and entry.is_active]
        WatchListEntry.objects.filter(pk__in=gone).update(is_active=False)
        WatchList.objects.filter(pk=watch_list.pk).update(
            loaded_at=timezone.now(),
            loaded_by=by_name[:150],
            file_sha256=digest,
            version=watch_list.version + 1,
            source=source[:200] or watch_list.source,
        )
        watch_list.refresh_from_db()
        audit.record(
            actor=by,
            action=audit.AuditAction.WATCHLIST_LOADED,
            object_type="watch_list",
            object_id=watch_list.pk,
            new={
                "name": watch_list.name,
                "kind": kind,
                "version": watch_list.version,
                "file_sha256": digest,
                "created": len(created),
                "updated": len(updated),
                "deactivated": len(gone),
            },
        )
    return LoadResult(watch_list, len(created), len(updated), len(gone), unchanged)


# --- Screening ------------------------------------------------------------------------------


def _candidates() -> Iterator[Candidate]:
    entries = WatchListEntry.objects.filter(is_active=True).order_by("pk")
    for entry in entries.iterator(chunk_size=2000):
        forms = [("name", name_form(entry.name))] + [("alias", name_form(alias)) for alias in entry.aliases]
        yield Candidate(
            entry_id=entry.pk,
            forms=tuple((field_name, form) for field_name, form in forms if form.words),
            birth_date=entry.birth_date.isoformat() if entry.birth_date else None,
            birth_year=entry.birth_year or (entry.birth_date.year if entry.birth_date else None),
            countries=frozenset(entry.countries),
        )


def _list_versions() -> dict[str, int]:
    return {str(pk): version for pk, version in WatchList.objects.values_list("pk", "version")}


@dataclass
class ScreeningResult:
    screened: int = 0
    matches: int = 0
    full: bool = False
    entries: int = 0
    by_list_kind: dict[str, int] = field(default_factory=dict)


def screen_clients(*, full: bool = False, batch: int = 5000) -> ScreeningResult:
    """Screen the clients that need it (see the module docstring) and replace their matches.

    Returns what was done. Safe to run twice: a second run finds nothing changed and screens
    no one. The matches of the screened clients are replaced in one transaction.
    """
    started = timezone.now()
    ComplianceMark.objects.get_or_create(name=SCREENING_MARK)
    mark = ComplianceMark.objects.get(name=SCREENING_MARK)
    versions = _list_versions()
    full = full or mark.at is None or mark.detail.get("lists") != versions
    index = CandidateIndex(_candidates())
    threshold = conf.screening_threshold()
    clients = Client.objects.exclude(status=Client.Status.CLOSED)
    if not full:
        clients = clients.filter(Q(updated_at__gte=mark.at) | Q(kyc__updated_at__gte=mark.at))
    rows = clients.order_by("pk").values_list("pk", "name", "birthday", "kyc__nationality")
    result = ScreeningResult(full=full, entries=len(index))
    screened_ids: list[int] = []
    found: list[ScreeningMatch] = []
    for client_id, name, birthday, nationality in rows.iterator(chunk_size=batch):
        screened_ids.append(client_id)
        if not len(index):
            continue
        form = name_form(name)
        for match in index.matches(
            form,
            birthday=birthday.isoformat() if birthday else None,
            nationality=nationality,
            threshold=threshold,
        ):
            found.append(
                ScreeningMatch(
                    client_id=client_id,
                    entry_id=match.entry_id,
                    score=match.score,
                    name_score=match.name_score,
                    matched_fields=list(match.matched_fields),
                    client_name=name[:200],
                    matched_name=match.matched_name[:200],
                    screened_at=started,
                )
            )
    with transaction.atomic():
        if full:
            ScreeningMatch.objects.all().delete()
        else:
            for start in range(0, len(screened_ids), 1000):
                ScreeningMatch.objects.filter(client_id__in=screened_ids[start : start + 1000]).delete()
        ScreeningMatch.objects.bulk_create(found, batch_size=2000)
        ComplianceMark.objects.filter(name=SCREENING_MARK).update(
            at=started, value=len(screened_ids), detail={"lists": versions}
        )
    result.screened = len(screened_ids)
    result.matches = len(found)
    return result
