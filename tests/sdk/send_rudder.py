"""RudderStack's Python SDK (rudder-sdk-python, Segment's protocol, gzip by default) against plutos.
argv: collector URL, write key. Prints the events it sent as JSON; exits 1 if the SDK reported a failure."""
import json
import sys

import rudderstack.analytics as analytics

url, key = sys.argv[1], sys.argv[2]
failures = []
analytics.write_key = key
analytics.dataPlaneUrl = url
analytics.on_error = lambda error, items: failures.append(f"{error} ({len(items)} events)")
analytics.max_retries = 2
analytics.track("u-rudder", "Clicked", {"button": "buy"}, message_id="rudder-track")
analytics.identify("u-rudder", {"plan": "free"}, message_id="rudder-identify")
analytics.page("u-rudder", "Shop", "Home", message_id="rudder-page")
analytics.flush()
analytics.shutdown()
if failures:
    sys.exit(f"rudder-sdk-python reported: {failures}")
print(json.dumps([
    {"event_id": "rudder-track", "event_type": "track", "event_name": "Clicked", "user_id": "u-rudder"},
    {"event_id": "rudder-identify", "event_type": "identify", "event_name": None, "user_id": "u-rudder"},
    {"event_id": "rudder-page", "event_type": "page", "event_name": "Home", "user_id": "u-rudder"},
]))
