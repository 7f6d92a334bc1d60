// Segment's Node SDK (@segment/analytics-node) against plutos: track, identify and page, then close and flush.
// argv: collector URL, write key. Prints the events it sent as JSON; exits 1 if the SDK reported a failure.
const { Analytics } = require('@segment/analytics-node');
const [url, key] = process.argv.slice(2);
const failures = [];
const analytics = new Analytics({ writeKey: key, host: url, flushAt: 3, maxRetries: 2 });
analytics.on('error', (error) => failures.push(String(error.reason || error.code || error)));
analytics.track({ userId: 'u-seg-node', event: 'Signed Up', properties: { plan: 'pro' }, messageId: 'seg-node-track' });
analytics.identify({ anonymousId: 'a-seg-node', traits: { email: 'a@example.com' }, messageId: 'seg-node-identify' });
analytics.page({ userId: 'u-seg-node', name: 'Pricing', properties: { path: '/pricing' }, messageId: 'seg-node-page' });
analytics.closeAndFlush({ timeout: 20000 }).then(() => {
  if (failures.length) {
    console.error('@segment/analytics-node reported:', failures);
    process.exit(1);
  }
  console.log(JSON.stringify([
    { event_id: 'seg-node-track', event_type: 'track', event_name: 'Signed Up', user_id: 'u-seg-node' },
    { event_id: 'seg-node-identify', event_type: 'identify', event_name: null, user_id: null },
    { event_id: 'seg-node-page', event_type: 'page', event_name: 'Pricing', user_id: 'u-seg-node' },
  ]));
});
