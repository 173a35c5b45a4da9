"""Who a user is across sites: ``name@site``.

A user is an account of one site; two sites may each have a ``bob``, and they are two
people. Everywhere a person, or another site, sees or names a user (``/whoami``, an
object's ``owner``, token and job listings, curation history, PROV agents) the user is
written ``name@site``; every rule compares name *and* site (``awecore.visibility``).

Inside one site's tables a name is kept as that site writes it, which is also how it was
kept before sites were part of names, so nothing stored needs to change:

* a user of the site itself is kept by the bare name (``bob``);
* a user of another site (a guest member of a project, the creator of an object made
  while signed in as a guest) is kept qualified (``bob@other-site``).

So a stored name is *relative to a site* (an object's ``creator`` to the object's
``site``, a job's ``submitted_by`` to the site that runs it): ``qualify`` makes it whole,
``local_name`` makes a whole (or bare) name given to a site's API the form that site
keeps. A bare name given to an API means "the user of this site".

Contracts layer: standard library only.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["NAME_PATTERN", "SITE_PATTERN", "USER_PATTERN", "UserId", "local_name", "qualify",
           "same_user"]

#: a user's name at their site (no ``@``: that separates the site)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: a site's name (``AWE_SITE``; ``awecore.server.settings`` checks it with the same pattern)
SITE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
#: a user as an API accepts one: a bare name (this site's user) or ``name@site``
USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(@[a-z0-9][a-z0-9-]{0,39})?$"

_NAME = re.compile(NAME_PATTERN)
_SITE = re.compile(SITE_PATTERN)


class UserId(NamedTuple):
    """One person: a name at a site. ``str()`` is ``name@site``."""

    name: str
    site: str

    def __str__(self) -> str:
        return f"{self.name}@{self.site}"

    @classmethod
    def parse(cls, text: str, here: str) -> UserId:
        """``name@site``, or a bare name meaning the user of site ``here``; ValueError for
        anything else (an empty name, a bad site, two ``@``)."""
        name, at, site = text.rpartition("@")
        if not at:
            name, site = text, here
        if not _NAME.match(name):
            raise ValueError(f"{text!r} is not a user: give name or name@site (a name of "
                             "letters, digits, '_', '.', '-', at most 64)")
        if not _SITE.match(site):
            raise ValueError(f"{text!r} is not a user: {site!r} is not a site name "
                             "(lower-case letters, digits and '-')")
        return cls(name, site)

    def at(self, here: str) -> str:
        """How site ``here`` keeps this user: bare if it is theirs, else ``name@site``."""
        return self.name if self.site == here else str(self)


def qualify(name: str, site: str) -> str:
    """A name as a site keeps it (``site``: the site it is relative to: an object's site,
    the site whose API answers), made whole: ``bob`` -> ``bob@site``, ``bob@other`` stays.
    Lenient, for showing what is stored: a stored name that does not parse (written before
    names were checked) is taken as a bare name of ``site``."""
    if "@" in name:
        try:
            return str(UserId.parse(name, site))
        except ValueError:
            pass
    return f"{name}@{site}"


def local_name(text: str, here: str) -> str:
    """A user named to site ``here``'s API (bare or ``name@site``) as ``here`` keeps it:
    ``bob``, ``bob@here`` -> ``bob``; ``bob@other`` -> ``bob@other``. ValueError if it is
    not a user's name."""
    return UserId.parse(text, here).at(here)


def same_user(name: str, site: str, other: str, other_site: str) -> bool:
    """Whether two stored names, each relative to its site, are the same person."""
    return qualify(name, site) == qualify(other, other_site)
