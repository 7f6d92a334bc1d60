// PostHog's Node SDK (posthog-node, gzip by default) against plutos: a pageview, a custom event and an identify,
// then shutdown. argv: collector URL, project API key. Prints the events it sent as JSON; exits 1 on a failure.
const { PostHog } = require('posthog-node');
const [url, key] = process.argv.slice(2);
const failures = [];
const posthog = new PostHog(key, { host: url, flushAt: 3, flushInterval: 0, fetchRetryCount: 1 });
posthog.on('error', (error) => failures.push(String(error)));
const ids = ['0193a1b2-0000-7000-8000-000000000001', '0193a1b2-0000-7000-8000-000000000002'];
posthog.capture({ distinctId: 'd-ph-node', event: '$pageview', properties: { $current_url: 'https://x/' }, uuid: ids[0] });
posthog.capture({ distinctId: 'd-ph-node', event: 'clicked', properties: { button: 'buy' }, uuid: ids[1] });
posthog.identify({ distinctId: 'd-ph-node', properties: { email: 'a@example.com' } });
posthog.shutdown(20000).then(() => {
  if (failures.length) {
    console.error('posthog-node reported:', failures);
    process.exit(1);
  }
  console.log(JSON.stringify([
    { event_id: ids[0], event_type: 'page', event_name: '$pageview', user_id: 'd-ph-node' },
    { event_id: ids[1], event_type: 'track', event_name: 'clicked', user_id: 'd-ph-node' },
    // identify() takes no id of its own: found by its name and user.
    { event_id: null, event_type: 'identify', event_name: '$identify', user_id: 'd-ph-node' },
  ]));
});
