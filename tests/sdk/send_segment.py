"""Segment's Python SDK (segment-analytics-python) against plutos: track, identify and page, then flush.
argv: collector URL, write key. Prints the events it sent as JSON; exits 1 if the SDK reported a failure."""
import json
import sys

import segment.analytics as analytics

url, key = sys.argv[1], sys.argv[2]
failures = []
analytics.write_key = key
analytics.host = url
analytics.on_error = lambda error, items: failures.append(f"{error} ({len(items)} events)")
analytics.track("u-seg-py", "Order Completed", {"total": 12.5, "currency": "EUR"}, message_id="seg-py-track")
analytics.identify("u-seg-py", {"plan": "pro", "email": "a@example.com"}, message_id="seg-py-identify")
analytics.page("u-seg-py", "Docs", "Install", {"url": "https://example.com/docs"}, message_id="seg-py-page")
analytics.flush()
analytics.shutdown()
if failures:
    sys.exit(f"segment-analytics-python reported: {failures}")
print(json.dumps([
    {"event_id": "seg-py-track", "event_type": "track", "event_name": "Order Completed", "user_id": "u-seg-py"},
    {"event_id": "seg-py-identify", "event_type": "identify", "event_name": None, "user_id": "u-seg-py"},
    {"event_id": "seg-py-page", "event_type": "page", "event_name": "Install", "user_id": "u-seg-py"},
]))
