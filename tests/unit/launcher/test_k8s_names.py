"""Job names and label values stay valid and distinct whatever the run ids and location names."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from launcher.k8s import job_name, label_value

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_a_plain_run_id_reads_as_it_is() -> None:
    assert job_name("3f2a9c0d1e4b5a6f7c8d") == "partita-run-3f2a9c0d1e4b5a6f7c8d"
    assert label_value("analytics") == "analytics"


def test_long_or_odd_ids_are_shortened_with_a_hash_of_the_original() -> None:
    long_id = "Run_" + "x" * 100
    name = job_name(long_id)
    assert len(name) <= 63 and DNS_LABEL.match(name)
    assert name != job_name(long_id + "y")
    assert job_name("A.B") != job_name("a-b")  # sanitized alike, told apart by the hash


def test_label_values_of_location_names() -> None:
    assert label_value("my location/v2") == label_value("my location/v2")
    assert LABEL_VALUE.match(label_value("my location/v2"))
    assert label_value("-x-") != label_value("x")
    assert label_value("é") and LABEL_VALUE.match(label_value("é"))


@given(st.text(min_size=1, max_size=200))
def test_every_run_id_gives_a_dns_1123_label(run_id: str) -> None:
    name = job_name(run_id)
    assert len(name) <= 63 and DNS_LABEL.match(name), name


@given(st.text(max_size=200))
def test_every_string_gives_a_valid_label_value(value: str) -> None:
    cleaned = label_value(value)
    assert len(cleaned) <= 63 and LABEL_VALUE.match(cleaned), cleaned


@given(st.text(min_size=1, max_size=120), st.text(min_size=1, max_size=120))
def test_distinct_ids_give_distinct_names(first: str, second: str) -> None:
    if first != second:
        assert job_name(first) != job_name(second)
