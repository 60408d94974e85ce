/**
 * Every error OmniQueue throws is an {@link OmniQueueError}: it carries a stable `code` from
 * {@link ErrorCode}, a `retryable` flag that tells a caller whether trying the same call again can
 * succeed, and the underlying `cause` when there is one. Messages never contain credentials or
 * connection strings: use {@link redact} on anything that might.
 *
 * @packageDocumentation
 */

/**
 * Stable, machine-readable error codes. One subclass of {@link OmniQueueError} per code. Each
 * subclass passes its code as a (type-checked) literal rather than through this object, so a bundle
 * that never reads `ErrorCode` does not carry it.
 */
export const ErrorCode = {
  InvalidName: 'INVALID_NAME',
  MissingGroup: 'MISSING_GROUP',
  InvalidMessage: 'INVALID_MESSAGE',
  InvalidOptions: 'INVALID_OPTIONS',
  AdapterNotFound: 'ADAPTER_NOT_FOUND',
  NotInitialized: 'NOT_INITIALIZED',
  Closed: 'CLOSED',
  Connection: 'CONNECTION',
  Publish: 'PUBLISH',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  TooManyHeaders: 'TOO_MANY_HEADERS',
  UnsupportedFeature: 'UNSUPPORTED_FEATURE',
  Decode: 'DECODE',
  SchemaValidation: 'SCHEMA_VALIDATION',
  Config: 'CONFIG',
  Timeout: 'TIMEOUT',
  BrokerUnavailable: 'BROKER_UNAVAILABLE',
  FullBatchFailure: 'FULL_BATCH_FAILURE',
  Abandoned: 'ABANDONED',
  GroupInUse: 'GROUP_IN_USE',
} as const;

/** Union of every {@link ErrorCode} value. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Options shared by every OmniQueue error constructor. */
export interface OmniQueueErrorOptions {
  /** The error that caused this one. */
  readonly cause?: unknown;
  /** Overrides the subclass default for {@link OmniQueueError.retryable}. */
  readonly retryable?: boolean;
}

/** Base class of every error OmniQueue throws. */
export class OmniQueueError extends Error {
  /** Stable code, safe to switch on. */
  readonly code: ErrorCode;
  /** True when repeating the same call may succeed (a transient broker or network failure). */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, retryable: boolean, options: OmniQueueErrorOptions = {}) {
    super(redact(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? retryable;
  }
}

/** A topic, group or header name breaks the naming rules. */
export class InvalidNameError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('INVALID_NAME', message, false, options);
  }
}

/** `subscribe` was called without a group id: OmniQueue never fans out silently. */
export class MissingGroupError extends OmniQueueError {
  constructor(topic: string, options?: OmniQueueErrorOptions) {
    super(
      'MISSING_GROUP',
      `subscribe('${topic}', handler, groupId): groupId is mandatory and must be a non-empty string. ` +
        'Every group gets every message; inside a group each message goes to one consumer.',
      false,
      options,
    );
  }
}

/** The message given to `publish` cannot be sent as it is (body not JSON-serialisable, bad header value…). */
export class InvalidMessageError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('INVALID_MESSAGE', message, false, options);
  }
}

/** Options passed to a call are out of range or contradict each other. */
export class InvalidOptionsError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('INVALID_OPTIONS', message, false, options);
  }
}

/** `create(name)` named an adapter that no imported module registered. */
export class AdapterNotFoundError extends OmniQueueError {
  constructor(name: string, known: readonly string[], options?: OmniQueueErrorOptions) {
    super(
      'ADAPTER_NOT_FOUND',
      `No adapter named '${name}' is registered (registered: ${known.join(', ') || 'none'}). ` +
        `Import its subpath first, e.g. import 'omniqueue/adapters/${name}'.`,
      false,
      options,
    );
  }
}

/** `publish` or `subscribe` was called before `init()`. */
export class NotInitializedError extends OmniQueueError {
  constructor(operation: string, options?: OmniQueueErrorOptions) {
    super('NOT_INITIALIZED', `${operation} called before init(): call await broker.init() first.`, false, options);
  }
}

/** The broker or subscription was already closed. */
export class ClosedError extends OmniQueueError {
  constructor(what: string, options?: OmniQueueErrorOptions) {
    super('CLOSED', `${what} is closed.`, false, options);
  }
}

/** The adapter could not reach or lost its broker. */
export class ConnectionError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('CONNECTION', message, true, options);
  }
}

/** The broker did not confirm a publish; the message may not have been stored. */
export class PublishError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('PUBLISH', message, true, options);
  }
}

/** The encoded message exceeds the broker's size limit. */
export class PayloadTooLargeError extends OmniQueueError {
  /** Size of the encoded payload in bytes. */
  readonly size: number;
  /** The broker's limit in bytes. */
  readonly limit: number;

  constructor(size: number, limit: number, broker: string, options?: OmniQueueErrorOptions) {
    super('PAYLOAD_TOO_LARGE', `Message of ${size} bytes exceeds ${broker}'s limit of ${limit} bytes.`, false, options);
    this.size = size;
    this.limit = limit;
  }
}

/** The broker cannot carry that many headers / attributes. */
export class TooManyHeadersError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('TOO_MANY_HEADERS', message, false, options);
  }
}

/** The adapter does not support a requested feature (declared in its features). */
export class UnsupportedFeatureError extends OmniQueueError {
  constructor(adapter: string, feature: string, options?: OmniQueueErrorOptions) {
    super('UNSUPPORTED_FEATURE', `The '${adapter}' adapter does not support ${feature}.`, false, options);
  }
}

/** A received payload could not be decoded (invalid JSON from a foreign producer…). */
export class DecodeError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('DECODE', message, false, options);
  }
}

/** A message body failed the subscription's schema. Never retried: it goes to the dead-letter destination. */
export class SchemaValidationError extends OmniQueueError {
  /** The issues reported by the schema, as Standard Schema lists them. */
  readonly issues: readonly { readonly message: string; readonly path?: readonly PropertyKey[] }[];

  constructor(issues: readonly { readonly message: string; readonly path?: readonly unknown[] }[], options?: OmniQueueErrorOptions) {
    const summary = issues
      .slice(0, 5)
      .map((issue) => `${formatPath(issue.path)}${issue.message}`)
      .join('; ');
    super('SCHEMA_VALIDATION', `Message failed schema validation: ${summary}`, false, options);
    this.issues = issues.map((issue) => ({
      message: issue.message,
      path: issue.path?.map((segment) => (typeof segment === 'object' && segment !== null && 'key' in segment ? (segment.key as PropertyKey) : (segment as PropertyKey))),
    }));
  }
}

/** The topology or adapter configuration is invalid. */
export class ConfigError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('CONFIG', message, false, options);
  }
}

/** An operation did not finish within its time limit. */
export class TimeoutError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('TIMEOUT', message, true, options);
  }
}

/** A broker needed by a test or command is not running and could not be started. */
export class BrokerUnavailableError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('BROKER_UNAVAILABLE', message, true, options);
  }
}

/** A group to be deleted (`omniqueue provision --prune`) still has connected consumers; it was left in place. */
export class GroupInUseError extends OmniQueueError {
  constructor(message: string, options?: OmniQueueErrorOptions) {
    super('GROUP_IN_USE', message, true, options);
  }
}

/** Every record of a trigger's batch failed, and the caller asked for a throw (Lambda then backs off). */
export class FullBatchFailureError extends OmniQueueError {
  /** Ids of the failed records. */
  readonly failedIds: readonly string[];

  constructor(failedIds: readonly string[], options?: OmniQueueErrorOptions) {
    super('FULL_BATCH_FAILURE', `All ${failedIds.length} records of the batch failed (throwOnFullBatchFailure is on).`, true, options);
    this.failedIds = failedIds;
  }
}

/** Messages of a trigger invocation failed and were handed back to the host for redelivery (Azure Functions abandons them). */
export class MessageAbandonedError extends OmniQueueError {
  /** Message ids of the invocation that were not completed. */
  readonly messageIds: readonly string[];

  constructor(messageIds: readonly string[], total: number, options?: OmniQueueErrorOptions) {
    super(
      'ABANDONED',
      `${messageIds.length} of ${total} message(s) failed and will be redelivered (abandoned by the host): ${messageIds.join(', ')}`,
      true,
      options,
    );
    this.messageIds = messageIds;
  }
}

function formatPath(path: readonly unknown[] | undefined): string {
  if (!path || path.length === 0) return '';
  const segments = path.map((segment) =>
    typeof segment === 'object' && segment !== null && 'key' in segment ? String((segment as { key: unknown }).key) : String(segment),
  );
  return `${segments.join('.')}: `;
}

const CREDENTIAL_IN_URL = /([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]+):([^@/\s]+)@/gi;
const SECRET_PAIR = /((?:password|passwd|pwd|secret|sharedaccesskey|accountkey|token|apikey|api_key)\s*[=:]\s*)([^;&\s,]+)/gi;

/**
 * Removes credentials from a string: `amqp://user:pass@host` becomes `amqp://user:***@host`, and
 * `SharedAccessKey=…`, `password=…` and similar pairs lose their values.
 */
export function redact(text: string): string {
  return text.replace(CREDENTIAL_IN_URL, '$1$2:***@').replace(SECRET_PAIR, '$1***');
}
