"""The password policy for new passwords (NIST SP 800-63B, section 5.1.1.2).

At least `MIN_LENGTH` characters, no composition rules, and a refusal of what attackers try
first: common passwords, keyboard walks, repeats, dates, and the account's own email. The
guessing estimate and its list of common passwords come from zxcvbn. Existing passwords are
never re-checked: the policy applies when a password is chosen.
"""

from __future__ import annotations

from zxcvbn import zxcvbn

from pitchcraft.core.errors import Invalid

MIN_LENGTH = 8
# zxcvbn's scale: 0 and 1 mean fewer than a million guesses (common passwords and their
# small variations); an online attacker throttled to a few tries a minute stays far below.
MIN_SCORE = 2
# zxcvbn refuses longer input (its time grows with the length); the first characters decide
# a weak password anyway.
ESTIMATED_CHARS = 72


def check_new_password(
    password: str, email: str | None = None, *, min_length: int = MIN_LENGTH
) -> None:
    """Raise Invalid, saying why in plain words, unless `password` may be chosen for the
    account `email`."""
    if len(password) < min_length:
        raise Invalid(
            f"The password must be at least {min_length} characters long; "
            "a few unrelated words make a good one.",
            code="password_too_short",
        )
    folded = " ".join(password.split()).casefold()
    if not folded:
        raise Invalid(
            "This password is too easy to guess: it is only spaces.", code="password_too_weak"
        )
    own = _own_words(email)
    if folded in own:
        raise Invalid(
            "The password cannot be your email address or the part before the @.",
            code="password_is_email",
        )
    estimate = zxcvbn(password[:ESTIMATED_CHARS], user_inputs=sorted(own))
    if estimate["score"] < MIN_SCORE:
        warning = str(estimate.get("feedback", {}).get("warning") or "").rstrip(".")
        why = f": {warning[0].lower()}{warning[1:]}" if warning else ""
        raise Invalid(
            f"This password is too easy to guess{why}. Choose a longer one, for example a few "
            "unrelated words.",
            code="password_too_weak",
        )


def _own_words(email: str | None) -> set[str]:
    if not email:
        return set()
    address = email.strip().casefold()
    local = address.split("@", 1)[0]
    return {w for w in (address, local) if w}
