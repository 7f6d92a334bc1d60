"""PostHog's Python SDK (posthog) against plutos: a pageview, a custom event and a $set, then flush.
argv: collector URL, project API key. Prints the events it sent as JSON; exits 1 if the SDK reported a failure."""
import json
import sys

from posthog import Posthog

url, key = sys.argv[1], sys.argv[2]
failures = []
posthog = Posthog(key, host=url, on_error=lambda error, items: failures.append(f"{error} ({len(items)} events)"))
sent = [
    (posthog.capture("$pageview", distinct_id="d-ph-py", properties={"$current_url": "https://example.com/"}), "page", "$pageview"),
    (posthog.capture("signed_up", distinct_id="d-ph-py", properties={"plan": "pro"}), "track", "signed_up"),
    (posthog.set(distinct_id="d-ph-py", properties={"email": "a@example.com"}), "identify", "$set"),
]
posthog.flush()
posthog.shutdown()
if failures:
    sys.exit(f"posthog reported: {failures}")
print(json.dumps([
    {"event_id": uuid, "event_type": kind, "event_name": name, "user_id": "d-ph-py"} for uuid, kind, name in sent
]))
