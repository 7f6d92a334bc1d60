// Snowplow's Node tracker (@snowplow/node-tracker) against plutos: a page view, a structured event and a
// self-describing one with a context (base64), sent as one tp2 POST. argv: collector URL, app id. Prints the
// events it sent as JSON; exits 1 if the emitter reported a failure.
const { newTracker, buildPageView, buildStructEvent, buildSelfDescribingEvent } = require('@snowplow/node-tracker');
const [url, appId] = process.argv.slice(2);
const failures = [];
const tracker = newTracker(
  { namespace: 'node', appId, encodeBase64: true },
  { endpoint: url, bufferSize: 3, onRequestFailure: (failure) => failures.push(String(failure.status || failure)) },
);
tracker.setUserId('u-sp-node');
const context = [{ schema: 'iglu:com.acme/user/jsonschema/1-0-0', data: { tier: 2 } }];
const sent = [
  [tracker.track(buildPageView({ pageUrl: 'https://example.com/', pageTitle: 'Home' }), context), 'page', 'page_view'],
  [tracker.track(buildStructEvent({ category: 'shop', action: 'checkout' })), 'track', 'checkout'],
  [tracker.track(buildSelfDescribingEvent({ event: { schema: 'iglu:com.acme/link_click/jsonschema/1-0-0', data: { target: '/y' } } })), 'track', 'link_click'],
];
Promise.resolve(tracker.flush()).then(() => new Promise((done) => setTimeout(done, 200))).then(() => {
  if (failures.length) {
    console.error('@snowplow/node-tracker reported:', failures);
    process.exit(1);
  }
  console.log(JSON.stringify(sent.map(([payload, kind, name]) => (
    { event_id: payload.eid, event_type: kind, event_name: name, user_id: 'u-sp-node' }))));
});
