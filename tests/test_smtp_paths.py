"""The SMTP door reads a plain <local@domain> path with a pattern instead of aiosmtpd's run of
the email package's address grammar: to the very same address and parameters, for generated
paths and for anything a client may send (hypothesis, against aiosmtpd's own reading)."""

from __future__ import annotations

from typing import Any

from aiosmtpd.smtp import SMTP
from hypothesis import given
from hypothesis import strategies as st

from intake.mail.smtp import PLAIN_PATH, IntakeSMTP

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
atoms = st.text(ATEXT, min_size=1, max_size=12)
labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
locals_ = st.lists(atoms, min_size=1, max_size=3).map(".".join)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)
params = st.sampled_from(["", " SIZE=4096", "  BODY=8BITMIME SMTPUTF8", "\tSIZE=1 ", "SIZE=2"])
noise = st.text(st.characters(codec="ascii"), max_size=40)


def door(local_part_limit: int = 0) -> Any:
    smtp = IntakeSMTP.__new__(IntakeSMTP)  # only _getaddr is called: no session is needed
    smtp.local_part_limit = local_part_limit
    return smtp


def aiosmtpd_reading(arg: str, local_part_limit: int = 0) -> Any:
    smtp = SMTP.__new__(SMTP)
    smtp.local_part_limit = local_part_limit
    return SMTP._getaddr(smtp, arg)


@given(locals_, domains, params)
def test_a_plain_path_reads_as_aiosmtpd_reads_it(local: str, domain: str, rest: str) -> None:
    arg = f"<{local}@{domain}>{rest}"
    assert PLAIN_PATH.match(arg) is not None  # the fast way is taken
    assert door()._getaddr(arg) == aiosmtpd_reading(arg)


@given(noise)
def test_anything_else_reads_as_aiosmtpd_reads_it(arg: str) -> None:
    assert door()._getaddr(arg) == aiosmtpd_reading(arg)


@given(locals_, domains)
def test_the_local_part_limit_still_holds(local: str, domain: str) -> None:
    arg = f"<{local}@{domain}>"
    assert door(8)._getaddr(arg) == aiosmtpd_reading(arg, 8)
