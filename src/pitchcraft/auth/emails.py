"""Email addresses as accounts compare them.

Two spellings of one address must be one account: `alice@example.com` typed in full-width
letters and `alice@example.com` are the same after Unicode NFKC normalisation, which every
comparison uses (registration, sign-in, the CLI, the legacy import). An address that still
holds invisible characters or letters of one script disguised as another's is refused when
an account is made, so no account can look like someone else's.
"""

from __future__ import annotations

import unicodedata

from confusable_homoglyphs import confusables

from pitchcraft.core.errors import Invalid

# Format (zero-width, bidi controls), control, private-use, unassigned and surrogate code
# points, and separators (a space inside an address is never meant).
_INVISIBLE = {"Cf", "Cc", "Co", "Cn", "Cs", "Zs", "Zl", "Zp"}


def normalize_email(email: str) -> str:
    return unicodedata.normalize("NFKC", email).strip().lower()


def check_email_characters(email: str) -> None:
    """Raise Invalid when a normalised address holds invisible or confusable characters."""
    if any(unicodedata.category(ch) in _INVISIBLE for ch in email):
        raise Invalid(
            "The email address holds invisible characters (such as a zero-width space); "
            "type it again.",
            code="email_invisible_characters",
        )
    for part in email.split("@"):
        # Mixed scripts with look-alike letters: a Cyrillic a in a Latin address.
        if part and confusables.is_dangerous(part):
            raise Invalid(
                "The email address mixes letters of different alphabets that look alike "
                "(such as a Cyrillic a among Latin letters); type it again.",
                code="email_confusable_characters",
            )
