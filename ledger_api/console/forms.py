"""A form as the console shows it back: the values typed (kept on an error), each field's
error, and the summary at the top that links to them (`console/macros.html`).

Errors come from three places, all turned into a sentence at the field: an amount typed
in major units (`core.amounts`), the service's schema (pydantic's errors, by their field),
and the checks a page makes itself (`Form.fail`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ledger_api.core.amounts import AmountError, minor_units
from ledger_api.pages.i18n import N_, Reader

# Messages keyed by what went wrong at a field.
FIELD_MESSAGES = (
    N_("field_error.required"),
    N_("field_error.too_long"),
    N_("field_error.invalid"),
    N_("field_error.control"),
    N_("amount_error.empty"),
    N_("amount_error.format"),
    N_("amount_error.decimals"),
    N_("amount_error.zero"),
    N_("amount_error.too_large"),
)
MAX_FIELD = 2000  # characters a console text field takes at most (the schema says less)


@dataclass
class Form:
    """One form's state on a page: `values` as typed, `errors` by field name (in order)."""

    reader: Reader
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    prefix: str = ""  # the fields' HTML id prefix, so two forms on a page never collide

    @property
    def ok(self) -> bool:
        return not self.errors

    def id(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def value(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def amount(self, name: str, currency: str) -> int | None:
        """The field `name` as minor units of `currency`, or None with its error set."""
        try:
            return minor_units(self.values.get(name, ""), currency)
        except AmountError as exc:
            self.fail(name, self.reader.t(f"amount_error.{exc.reason}", decimals=exc.decimals))
            return None

    def text(self, name: str) -> str:
        value = self.values.get(name, "").strip()
        if not value:
            self.fail(name, self.reader.t("field_error.required"))
        return value

    def schema_errors(self, error: ValidationError, fields: dict[str, str] | None = None) -> None:
        """A service schema's errors, each at the form field it names (`fields` maps a
        schema field to a form field where they differ); one without a field goes first."""
        for issue in error.errors():
            loc = [str(part) for part in issue.get("loc", ())]
            name = (fields or {}).get(loc[0], loc[0]) if loc else "_form"
            kind = str(issue.get("type", ""))
            message = str(issue.get("msg", ""))
            if kind in ("missing", "string_too_short"):
                self.fail(name, self.reader.t("field_error.required"))
            elif kind == "string_too_long" or "bytes" in message:
                self.fail(name, self.reader.t("field_error.too_long"))
            elif "control" in message or "invisible" in message:
                self.fail(name, self.reader.t("field_error.control"))
            else:
                self.fail(name, self.reader.t("field_error.invalid"))


def form_of(reader: Reader, data: Any, names: tuple[str, ...], prefix: str = "") -> Form:
    """The fields `names` of a posted form (a Starlette FormData), as text, bounded."""
    values = {}
    for name in names:
        value = data.get(name)
        values[name] = value[:MAX_FIELD] if isinstance(value, str) else ""
    return Form(reader, values, prefix=prefix)
