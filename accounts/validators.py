"""Password and phone-number rules."""

import functools
import zoneinfo

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class CharacterClassValidator:
    """At least one upper-case letter, one lower-case letter and one digit."""

    def validate(self, password: str, user=None) -> None:
        missing = []
        if not any(ch.isupper() for ch in password):
            missing.append(_("an upper-case letter"))
        if not any(ch.islower() for ch in password):
            missing.append(_("a lower-case letter"))
        if not any(ch.isdigit() for ch in password):
            missing.append(_("a digit"))
        if missing:
            raise ValidationError(
                _("The password must contain %(missing)s.") % {"missing": ", ".join(missing)},
                code="password_too_weak",
            )

    def get_help_text(self) -> str:
        return _("Your password must contain an upper-case letter, a lower-case letter and a digit.")


def validate_e164(value: str) -> None:
    """A phone number in E.164 form (``+`` and up to 15 digits) that is a possible number."""
    if not value:
        return
    # ASCII digits only: other scripts' digits pass isdigit() and phonenumbers, but the stored
    # text would differ from the same number typed in ASCII (uniqueness and phone login compare text).
    digits = value[1:]
    if not value.startswith("+") or not (digits.isascii() and digits.isdigit()) or len(value) > 16:
        raise ValidationError(_("Enter the phone number in E.164 form, e.g. +14155550123."), code="invalid_phone")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValidationError(_("Enter a valid phone number."), code="invalid_phone") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(_("Enter a valid phone number."), code="invalid_phone")


def validate_time_zone(value: str) -> None:
    """An IANA time zone name, e.g. ``Europe/Berlin``. Checked against the zone database
    rather than listed as choices: the list is long and changes with tzdata releases."""
    if value not in _time_zones():
        raise ValidationError(_("Enter an IANA time zone name, e.g. Europe/Berlin."), code="invalid_time_zone")


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
