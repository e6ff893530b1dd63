// Conversation memory for Node: the dapr-session component, transpiled by jco into
// ./generated (`npm run transpile`), behind a small class whose errors are JavaScript
// exceptions with a `kind` (the WIT error's case) and typed subclasses per case.

import { session as wit } from './generated/dapr_session.js';

/** Any error the component reported. `kind` is the WIT `error` case, e.g. `conflict`. */
export class SessionError extends Error {
  constructor(kind, message, details = {}) {
    super(message);
    this.name = new.target.name;
    this.kind = kind;
    Object.assign(this, details);
  }
}

/** Bad id, config or item; nothing was sent or written. `itemIndex` names the bad item. */
export class InvalidInputError extends SessionError {}
/** Other writers kept winning; `attempts` were made. */
export class ConflictError extends SessionError {}
/** The sidecar is unreachable or not ready. */
export class UnavailableError extends SessionError {}
/** A request took longer than `timeoutMs`. */
export class TimeoutError extends SessionError {}
/** The sidecar refused the API token. */
export class UnauthorizedError extends SessionError {}
/** The sidecar has no state store of that name. */
export class StoreNotFoundError extends SessionError {}
/** Stored data is not in the expected shape; it was left untouched. */
export class CorruptError extends SessionError {}
/** Anything else the sidecar reported: `status`, Dapr `errorCode`. */
export class StoreError extends SessionError {}
/** The session changed since the version `replace` / `replaceSuffix` expected. */
export class ChangedError extends SessionError {}
/** The connection broke after a request was sent: a write may have been applied. */
export class InterruptedError extends SessionError {}
/** The state store lacks a feature the layout needs (etags). */
export class UnsupportedError extends SessionError {}
/** The session holds more items (`count`) than one read returns: pass a limit. */
export class TooManyItemsError extends SessionError {}
/** The sidecar answered, but not in Dapr's format (or with too many bytes). */
export class ProtocolError extends SessionError {}
/** A bug in the component. */
export class InternalError extends SessionError {}

/** The exception for the WIT error `{ tag, val }`. */
export function toException(error) {
  const { tag, val } = error;
  switch (tag) {
    case 'invalid-input':
      return new InvalidInputError(tag, val.message, { itemIndex: val.itemIndex });
    case 'conflict':
      return new ConflictError(tag, `other writers kept winning (${val} attempts)`, {
        attempts: val,
      });
    case 'unavailable':
      return new UnavailableError(tag, val);
    case 'timeout':
      return new TimeoutError(tag, 'a request to the sidecar timed out');
    case 'unauthorized':
      return new UnauthorizedError(tag, 'the sidecar refused the API token');
    case 'store-not-found':
      return new StoreNotFoundError(tag, val);
    case 'corrupt':
      return new CorruptError(tag, val);
    case 'store':
      return new StoreError(tag, `${val.errorCode}: ${val.message}`, {
        status: val.status,
        errorCode: val.errorCode,
      });
    case 'changed':
      return new ChangedError(tag, 'the session changed since the expected version');
    case 'interrupted':
      return new InterruptedError(tag, val);
    case 'unsupported':
      return new UnsupportedError(tag, val);
    case 'too-many-items':
      return new TooManyItemsError(tag, `the session holds ${val} items: pass a limit`, {
        count: Number(val),
      });
    case 'protocol':
      return new ProtocolError(tag, val);
    case 'internal':
      return new InternalError(tag, val);
    default:
      // A case this wrapper does not know yet (a newer component): still a SessionError.
      return new SessionError(tag ?? 'unknown', JSON.stringify(val ?? error));
  }
}

/** Runs `call`, turning the component's error results into exceptions. */
function wrap(call) {
  try {
    return call();
  } catch (e) {
    if (e && typeof e === 'object' && 'payload' in e && e.payload?.tag) {
      throw toException(e.payload);
    }
    throw e;
  }
}

/** One conversation. Items are JSON objects in and out. */
export class Session {
  #inner;

  constructor(inner) {
    this.#inner = inner;
  }

  /**
   * Opens `sessionId` (sends nothing). `config`: `{ storeName, endpoint?, apiToken?,
   * ttlSeconds?, consistency?, keyPrefix?, defaultLimit?, timeoutMs?, layout?, maxItems? }`.
   */
  static open(sessionId, config) {
    return new Session(wrap(() => wit.Session.open(sessionId, config)));
  }

  /** The newest `limit` items (all without one), oldest first. */
  getItems(limit) {
    return wrap(() => this.#inner.getItems(limit)).map((text) => JSON.parse(text));
  }

  /** Appends `items` as one atomic batch. */
  addItems(items) {
    wrap(() => this.#inner.addItems(items.map((item) => JSON.stringify(item))));
  }

  /** Removes and returns the newest item, or `undefined` when the session is empty. */
  popItem() {
    const text = wrap(() => this.#inner.popItem());
    return text === undefined ? undefined : JSON.parse(text);
  }

  /**
   * The newest `limit` items (all without one) with `first`, the position of the first of them,
   * and `version`, the session's version as read: `{ items, first, version }`.
   */
  getSnapshot(limit) {
    const s = wrap(() => this.#inner.getSnapshot(limit));
    return {
      items: s.items.map((text) => JSON.parse(text)),
      first: Number(s.first),
      version: s.version,
    };
  }

  /** Replaces the whole history with `items`, atomically; only at `expected` if given. */
  replace(items, expected) {
    wrap(() => this.#inner.replace(items.map((item) => JSON.stringify(item)), expected));
  }

  /** Replaces the items from position `start` with `items`; only at `expected` if given. */
  replaceSuffix(start, items, expected) {
    wrap(() =>
      this.#inner.replaceSuffix(
        BigInt(start),
        items.map((item) => JSON.stringify(item)),
        expected,
      ),
    );
  }

  /** Deletes the items and the metadata. */
  clear() {
    wrap(() => this.#inner.clear());
  }

  /** The sidecar is ready and has the state store. */
  ping() {
    wrap(() => this.#inner.ping());
  }

  /** `{ sessionId, createdAt, updatedAt }`, times in ms since the Unix epoch. */
  metadata() {
    const m = wrap(() => this.#inner.metadata());
    return {
      sessionId: m.sessionId,
      createdAt: m.createdAt === undefined ? undefined : Number(m.createdAt),
      updatedAt: m.updatedAt === undefined ? undefined : Number(m.updatedAt),
    };
  }

  /** Frees the component's resource. */
  close() {
    this.#inner[Symbol.dispose]();
  }
}
