"""EncryptedTextField: a text column stored as a Fernet token (see brokercrm.lib.crypto),
with an optional companion column holding the keyed hash for exact lookup.

    id_number = EncryptedTextField(hash_field="id_number_hash")
    id_number_hash = models.CharField(max_length=64, blank=True, editable=False, db_index=True)

- Python sees plaintext; the database column holds only tokens ('' and NULL stay as they are).
- Every save (save(), create(), bulk_create()) sets the hash column from the value; declare
  the hash field after the encrypted one (Django prepares fields in declaration order).
  QuerySet.update() and bulk_update() do not: set the hash yourself there.
- The ciphertext differs on every write, so the field has no lookups but `isnull`: a filter
  on it raises FieldError instead of silently matching nothing. Look up by the hash:
  `.filter(id_number_hash=crypto.blind_index(value))`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core import checks
from django.db import models

from brokercrm.lib import crypto


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest (Fernet, keys in FIELD_ENCRYPTION_KEYS)"

    def __init__(self, *args: Any, hash_field: str | None = None, **kwargs: Any) -> None:
        self.hash_field = hash_field
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, list, dict]:
        name, path, args, kwargs = super().deconstruct()
        if self.hash_field:
            kwargs["hash_field"] = self.hash_field
        return name, path, args, kwargs

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if self.unique or self.db_index:
            errors.append(
                checks.Error(
                    "An EncryptedTextField cannot be unique or indexed (its ciphertext differs on every write).",
                    hint="Put the unique constraint or index on its hash_field.",
                    obj=self,
                    id="brokercrm.E101",
                )
            )
        if self.hash_field:
            names = [f.name for f in self.model._meta.concrete_fields]
            if self.hash_field not in names:
                errors.append(checks.Error(f"hash_field {self.hash_field!r} is not a field of the model.", obj=self))
            elif names.index(self.hash_field) < names.index(self.name):
                errors.append(
                    checks.Error(
                        f"hash_field {self.hash_field!r} must be declared after {self.name!r}.",
                        obj=self,
                        id="brokercrm.E102",
                    )
                )
        return errors

    def formfield(self, **kwargs: Any) -> forms.Field:
        # An identifier is one line: a text input (max_length bounds the plaintext), not a textarea.
        # (The admin asks for its textarea for every TextField: that becomes its text input.)
        widget = kwargs.get("widget")
        if (
            widget is None
            or isinstance(widget, forms.Textarea)
            or (isinstance(widget, type) and issubclass(widget, forms.Textarea))
        ):
            kwargs["widget"] = forms.TextInput(attrs={"class": "vTextField"})
        defaults = {"form_class": forms.CharField, "max_length": self.max_length}
        return models.Field.formfield(self, **{**defaults, **kwargs})

    # --- Python <-> database ------------------------------------------------------------------

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value))

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = super().pre_save(model_instance, add)
        if self.hash_field:
            setattr(model_instance, self.hash_field, crypto.blind_index(value))
        return value

    # --- serialisation (dumpdata / loaddata) -----------------------------------------------------

    def value_to_string(self, obj: models.Model) -> str:
        """dumpdata writes the ciphertext: a fixture file is as protected as the table."""
        value = self.value_from_object(obj)
        return value if not value else crypto.encrypt(str(value))

    def to_python(self, value: Any) -> Any:
        """loaddata reads the ciphertext back to the plaintext (encrypted again on save)."""
        if isinstance(value, str) and crypto.looks_encrypted(value):
            return crypto.decrypt(value)
        return super().to_python(value)

    # --- no lookups on ciphertext ----------------------------------------------------------------

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            return None  # Django raises FieldError: Unsupported lookup
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        return None
