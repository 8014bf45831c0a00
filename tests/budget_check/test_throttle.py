"""Cost Management 429s: wait what the headers say, never past the total cap."""
import pytest

from jobs.budget_check.throttle import DEFAULT_WAIT_SECONDS, next_wait, retry_after_seconds


@pytest.mark.parametrize("headers, seconds", [
    ({"Retry-After": "20"}, 20.0),
    ({"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "45"}, 45.0),
    ({"Retry-After": "5", "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": "30",
      "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after": "12"}, 30.0),  # the longest
    ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
    ({"x-ms-ratelimit-remaining-subscription-reads": "0"}, None),
])
def test_the_wait_comes_from_retry_after_or_the_cost_management_headers(headers, seconds):
    assert retry_after_seconds(headers) == seconds


@pytest.mark.parametrize("headers, waited, cap, wait", [
    ({"Retry-After": "20"}, 0, 60, 20.0),
    ({"Retry-After": "20"}, 40, 60, 20.0),     # exactly at the cap
    ({"Retry-After": "20"}, 41, 60, None),     # past it: stop, report partial
    ({}, 0, 60, DEFAULT_WAIT_SECONDS),         # no header: a polite default, never at once
    ({}, 55, 60, None),
    ({"Retry-After": "1"}, 0, 0, None),        # cap 0: never wait
])
def test_retries_stay_within_the_total_wait_cap(headers, waited, cap, wait):
    assert next_wait(headers, waited, cap) == wait
