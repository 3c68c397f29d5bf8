# Chinese headings below use full-width brackets, which RUF001 takes for look-alikes.
# ruff: noqa: RUF001
"""Which column is which, from a statement's headings (imports/guess.py): the usual bank
headings in Chinese and English are recognised exactly, nothing else is."""

from __future__ import annotations

from ledger_api.imports.guess import guess
from tests.imports.statements import HEADER, MAPPING


def test_a_chinese_bank_statement_maps_itself() -> None:
    expected = {field: heading for field, heading in MAPPING.items() if field != "refund_of"}
    assert guess(HEADER) == expected


def test_units_in_brackets_case_and_spacing_do_not_matter() -> None:
    assert guess(["交易日期", "收入金额（元）", "支出金额(元)", "对方 户名", "交易流水号："]) == {
        "date": "交易日期",
        "credit": "收入金额（元）",
        "debit": "支出金额(元)",
        "payer_reference": "对方 户名",
        "bank_reference": "交易流水号：",
    }
    assert guess(["DATE", "Amount (CNY)", "Payer", "Reference", "Balance"]) == {
        "date": "DATE",
        "amount": "Amount (CNY)",
        "payer_reference": "Payer",
        "bank_reference": "Reference",
        "balance": "Balance",
    }


def test_a_signed_amount_beside_credit_and_debit_is_not_guessed() -> None:
    assert guess(["交易金额", "收入金额", "支出金额"]) == {"credit": "收入金额", "debit": "支出金额"}


def test_near_misses_and_unknown_headings_are_left_for_her() -> None:
    assert guess(["摘要", "备注", "交易日", "收入金额合计", "Payer's bank", ""]) == {}


def test_each_field_is_taken_by_the_first_column_that_names_it() -> None:
    assert guess(["日期", "交易日期", "余额", "账户余额"]) == {"date": "日期", "balance": "余额"}
