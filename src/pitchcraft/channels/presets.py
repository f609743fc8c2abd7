"""The preset channels. Limits are the platforms' documented maximums where one exists (X,
LinkedIn, Google Ads); elsewhere the length past which the copy is cut off or stops working
(a search result's snippet, an inbox's subject column), as the guidance says."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    max_chars: int
    guidance: str
    custom: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: tuple[Channel, ...] = (
    Channel(
        "x-post",
        "X post",
        280,
        "One post of at most 280 characters (X counts each link as 23). One idea, plain "
        "words, no hashtag stuffing.",
    ),
    Channel(
        "linkedin-post",
        "LinkedIn post",
        3000,
        "A LinkedIn post (3,000 characters at most); only the first ~210 show before "
        "'…see more', so lead with the point. Short paragraphs.",
    ),
    Channel(
        "google-ads-headline",
        "Google Ads headline",
        30,
        "One responsive search ad headline: 30 characters at most, no exclamation mark, "
        "no all-caps words.",
    ),
    Channel(
        "google-ads-description",
        "Google Ads description",
        90,
        "One responsive search ad description: 90 characters at most, with a call to action.",
    ),
    Channel(
        "email-subject",
        "Email subject line",
        60,
        "An email subject line: about 60 characters show in most inboxes (fewer on a "
        "phone). Specific, no clickbait, no all caps.",
    ),
    Channel(
        "meta-description",
        "Meta description",
        155,
        "A page's meta description: search results cut it off after about 155 characters. "
        "Say what the page offers and why to click.",
    ),
    Channel(
        "landing-hero",
        "Landing-page hero",
        200,
        "A landing page's hero: a headline of about 10 words (under 70 characters) and a "
        "one-sentence subheadline, 200 characters in all. Benefit first.",
    ),
    Channel(
        "press-boilerplate",
        "Press release boilerplate",
        700,
        "The 'About the company' paragraph closing a press release: about 100 words (700 "
        "characters), third person, facts only: what the company does, for whom, since "
        "when, where.",
    ),
)

BY_ID = {c.id: c for c in PRESETS}
