"""Snowplow's Python tracker (snowplow-tracker) against plutos: a page view, a structured event and a
self-describing one over POST (tp2), and a page view over GET (/i, base64 encoding on).
argv: collector URL, app id. Prints the events it sent as JSON; exits 1 if an emitter reported a failure."""
import json
import sys
from urllib.parse import urlparse

from snowplow_tracker import Emitter, SelfDescribingJson, Subject, Tracker
from snowplow_tracker.events import PageView, SelfDescribing, StructuredEvent

url, app_id = sys.argv[1], sys.argv[2]
collector = urlparse(url)
failures = []
on_failure = lambda sent, unsent: failures.append(f"{len(unsent)} events not sent")
post = Emitter(collector.netloc, protocol=collector.scheme, method="post", batch_size=10, on_failure=on_failure)
get = Emitter(collector.netloc, protocol=collector.scheme, method="get", on_failure=on_failure)
subject = Subject().set_user_id("u-sp-py")
tracker = Tracker(namespace="py", emitters=post, app_id=app_id, subject=subject)
pixel = Tracker(namespace="py-get", emitters=get, app_id=app_id, subject=subject, encode_base64=True)
sent = [
    (tracker.track(PageView(page_url="https://example.com/", page_title="Home")), "page", "page_view"),
    (tracker.track(StructuredEvent(category="shop", action="add-to-basket")), "track", "add-to-basket"),
    (tracker.track(SelfDescribing(SelfDescribingJson("iglu:com.acme/link_click/jsonschema/1-0-0", {"target": "/x"}))),
     "track", "link_click"),
    (pixel.track(PageView(page_url="https://example.com/get", page_title="Get")), "page", "page_view"),
]
post.flush()
get.flush()
if failures:
    sys.exit(f"snowplow-tracker reported: {failures}")
print(json.dumps([
    {"event_id": eid, "event_type": kind, "event_name": name, "user_id": "u-sp-py"} for eid, kind, name in sent
]))
