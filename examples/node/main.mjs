// A two-turn conversation kept in a Dapr state store through the dapr-session component,
// then the typed errors. Prints one JSON line per step.
//
//   node main.mjs [ENDPOINT] [STORE]    (defaults: $DAPR_HTTP_ENDPOINT or
//                                         http://127.0.0.1:3500, and statestore;
//                                         the API token comes from $DAPR_API_TOKEN)

import {
  ChangedError,
  InvalidInputError,
  Session,
  SessionError,
  StoreNotFoundError,
} from './session.mjs';

const endpoint = process.argv[2] ?? process.env.DAPR_HTTP_ENDPOINT ?? 'http://127.0.0.1:3500';
const storeName = process.argv[3] ?? 'statestore';
const config = { storeName, endpoint, apiToken: process.env.DAPR_API_TOKEN || undefined };
const sessionId = `node-${process.pid}-${Date.now()}`;

const step = (name, result) => console.log(JSON.stringify({ step: name, result }));
const msg = (role, content) => ({ type: 'message', role, content });

const session = Session.open(sessionId, config);
session.ping();
step('ping', 'ok');

session.addItems([
  msg('user', 'What city is the Golden Gate Bridge in?'),
  msg('assistant', 'San Francisco.'),
]);
// The next turn, as another replica would run it: a session of its own.
const replica = Session.open(sessionId, config);
step('history', replica.getItems());
replica.addItems([msg('user', 'What state is it in?'), msg('assistant', 'California.')]);
step('newest-two', session.getItems(2));
step('pop', session.popItem());
// Compaction: replace the newest item, only if nothing was written since it was read.
const snapshot = session.getSnapshot(1);
session.replaceSuffix(snapshot.first, [msg('assistant', 'California, USA.')], snapshot.version);
step('replaced', session.getItems(1));
try {
  session.replace([msg('user', 'stale')], snapshot.version);
  step('stale-replace', 'accepted');
} catch (e) {
  if (!(e instanceof ChangedError)) throw e;
  step('stale-replace', { kind: e.kind });
}
const meta = session.metadata();
step('metadata', { sessionId: meta.sessionId, ordered: meta.createdAt <= meta.updatedAt });

try {
  session.addItems([msg('user', 'fine'), 'not an object']);
  step('invalid-item', 'accepted');
} catch (e) {
  if (!(e instanceof InvalidInputError)) throw e;
  step('invalid-item', { error: e.name, kind: e.kind, itemIndex: e.itemIndex });
}
step('after-invalid', session.getItems().length);

try {
  Session.open(sessionId, { ...config, storeName: 'no-such-store' }).getItems();
  step('wrong-store', 'answered');
} catch (e) {
  if (!(e instanceof StoreNotFoundError)) throw e;
  step('wrong-store', { kind: e.kind, isSessionError: e instanceof SessionError });
}

session.clear();
step('cleared', session.getItems());
replica.close();
session.close();
