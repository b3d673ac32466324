"""Call ids are UUIDv7: valid RFC 9562 UUIDs whose order follows time, so the audit log's call_id index grows
at one end (the bench's scale section shows what random ids cost at millions of records)."""

import time
import uuid

from hub.calls import new_call_id


def test_call_ids_are_version_7_uuids_ordered_by_time_and_unique() -> None:
    first = [new_call_id() for _ in range(1000)]
    time.sleep(0.002)
    later = new_call_id()
    parsed = [uuid.UUID(i) for i in first]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert len(set(first)) == len(first)
    assert all(later > i for i in first)
    assert abs((parsed[0].int >> 80) - time.time_ns() // 1_000_000) < 5_000
