"""Phone numbers: turn what a file, a form or Twilio gives us into E.164, or None."""

from __future__ import annotations

import phonenumbers


def normalise_phone(text: str, default_region: str | None = None) -> str | None:
    """The E.164 form of ``text`` ("+14155550101"), or None when it is no valid number.

    Withheld and placeholder callers ("anonymous", "restricted", "unknown", Twilio's
    "+266696687", an empty string) are not valid numbers, so they give None too. Without a
    ``default_region`` only numbers written with their country code are understood.
    """
    try:
        number = phonenumbers.parse(text.strip(), default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164
