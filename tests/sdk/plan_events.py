"""The Python SDKs of Segment (segment-analytics-python), PostHog (posthog) and Snowplow (snowplow-tracker) sending
events that a tracking plan judges: for Segment and PostHog an "Order Completed" with valid properties, one with a
wrong type, one missing a required property, and an unplanned event; for Snowplow a self-describing link click
that fits its schema and one that does not. Each SDK must report success.
argv: collector URL, Segment write key, PostHog key, Snowplow app id. Prints {"good": [ids], "bad": [ids]} as
the plan and the schemas must sort them."""
import json
import sys
from urllib.parse import urlparse

import segment.analytics as segment
from posthog import Posthog
from snowplow_tracker import Emitter, SelfDescribingJson, Subject, Tracker
from snowplow_tracker.events import SelfDescribing

url, segment_key, posthog_key, app_id = sys.argv[1:5]
failures = []
orders = [
    ("ok", {"total": 12.5, "currency": "EUR"}, "good"),
    ("wrong-type", {"total": "12.5", "currency": "EUR"}, "bad"),
    ("missing", {"currency": "EUR"}, "bad"),
]
verdicts = {"good": [], "bad": []}

segment.write_key = segment_key
segment.host = url
segment.on_error = lambda error, items: failures.append(f"segment: {error} ({len(items)} events)")
for name, properties, verdict in orders:
    segment.track("u-plan", "Order Completed", properties, message_id=f"seg-{name}")
    verdicts[verdict].append(f"seg-{name}")
segment.track("u-plan", "Coupon Applied", {"code": "X"}, message_id="seg-unplanned")
verdicts["bad"].append("seg-unplanned")
segment.identify("u-plan", {"plan": "pro"}, message_id="seg-identify")
verdicts["good"].append("seg-identify")
segment.flush()
segment.shutdown()

posthog = Posthog(posthog_key, host=url, on_error=lambda error, items: failures.append(f"posthog: {error}"))
for name, properties, verdict in orders:
    verdicts[verdict].append(posthog.capture("Order Completed", distinct_id="d-plan", properties=properties))
verdicts["bad"].append(posthog.capture("Coupon Applied", distinct_id="d-plan", properties={"code": "X"}))
posthog.flush()
posthog.shutdown()

collector = urlparse(url)
emitter = Emitter(collector.netloc, protocol=collector.scheme, method="post", batch_size=10,
                  on_failure=lambda sent, unsent: failures.append(f"snowplow: {len(unsent)} events not sent"))
tracker = Tracker(namespace="plan", emitters=emitter, app_id=app_id, subject=Subject().set_user_id("u-plan"))
link = "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1"
verdicts["good"].append(tracker.track(SelfDescribing(SelfDescribingJson(link, {"targetUrl": "/x"}))))
verdicts["bad"].append(tracker.track(SelfDescribing(SelfDescribingJson(link, {"target": "/x"}))))
emitter.flush()

if failures:
    sys.exit(f"an SDK reported a failure: {failures}")
print(json.dumps(verdicts))
