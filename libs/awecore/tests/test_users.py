"""Users are name@site: parsing, the form a site keeps, and showing them whole."""

from __future__ import annotations

import re

import pytest

from awecore.server.settings import SITE_PATTERN as SERVER_SITE_PATTERN
from awecore.users import SITE_PATTERN, USER_PATTERN, UserId, local_name, qualify, same_user


def test_a_bare_name_is_a_user_of_this_site() -> None:
    assert UserId.parse("bob", "a") == UserId("bob", "a")
    assert str(UserId.parse("bob", "a")) == "bob@a"
    assert UserId.parse("bob@b", "a") == UserId("bob", "b")


@pytest.mark.parametrize("bad", ["", "@a", "bob@", "bob@B", "bob@a@b", "bo b", "-bob",
                                 "bob@a.b", "x" * 65, "bob@" + "s" * 41])
def test_what_is_not_a_user_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a user"):
        UserId.parse(bad, "a")
    assert not re.match(USER_PATTERN, bad)


def test_a_site_keeps_its_own_users_bare_and_others_whole() -> None:
    assert local_name("bob", "a") == "bob"
    assert local_name("bob@a", "a") == "bob"
    assert local_name("bob@b", "a") == "bob@b"
    assert UserId("bob", "b").at("b") == "bob"


def test_stored_names_are_shown_whole() -> None:
    assert qualify("bob", "a") == "bob@a"
    assert qualify("bob@b", "a") == "bob@b"  # a guest of a, from b
    assert qualify("odd@Name.x", "a") == "odd@Name.x@a"  # written before names were checked
    assert same_user("bob", "b", "bob@b", "a")
    assert not same_user("bob", "a", "bob", "b")  # same name, two sites: two people


def test_sites_are_named_alike_everywhere() -> None:
    assert SITE_PATTERN == SERVER_SITE_PATTERN
