"""Name agreement a few spellings at a time: the batch's SQL, with the answers kept."""

from __future__ import annotations

import polars as pl

from customer360.core.names import NameAgreement


def test_name_agreement_decides_like_the_batch_and_remembers() -> None:
    agreement = NameAgreement()
    agreement.learn(pl.DataFrame({"left": ["robert", "mary"], "right": ["bob", "robert"]}))
    agreement._con.close()  # learned answers need no database any more
    assert agreement.compatible("bob", "robert") and not agreement.compatible("robert", "mary")
    assert agreement.compatible("robert", "robert")  # equal spellings never ask


def test_name_agreement_asks_about_unseen_pairs_on_the_spot() -> None:
    agreement = NameAgreement()
    assert agreement.compatible("jonathan", "jonahtan")  # a typo
    assert agreement.compatible("bill", "william")  # a nickname
    assert not agreement.compatible("ann", "robert")
