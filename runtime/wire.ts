import { DecodeError, InvalidMessageError } from './errors.js';
import type { Headers } from './message.js';

/** Headers OmniQueue itself puts on the wire. User headers must not start with `omniqueue-`. */
export const WireHeader = {
  Id: 'omniqueue-id',
  PublishedAt: 'omniqueue-published-at',
  Attempt: 'omniqueue-attempt',
  ContentType: 'content-type',
  ReplyTo: 'omniqueue-reply-to',
  CorrelationId: 'omniqueue-correlation-id',
  TraceParent: 'traceparent',
  TraceState: 'tracestate',
  DlqReason: 'omniqueue-dlq-reason',
  DlqError: 'omniqueue-dlq-error',
  DlqAttempts: 'omniqueue-dlq-attempts',
  DlqTopic: 'omniqueue-dlq-original-topic',
  DlqGroup: 'omniqueue-dlq-group',
  DlqFailedAt: 'omniqueue-dlq-failed-at',
  DlqOriginalContentType: 'omniqueue-dlq-original-content-type',
} as const;

/** Prefix reserved for OmniQueue's own headers. */
export const RESERVED_HEADER_PREFIX = 'omniqueue-';

/** Content type of JSON bodies. */
export const JSON_CONTENT_TYPE = 'application/json';
/** Content type of raw byte bodies. */
export const BINARY_CONTENT_TYPE = 'application/octet-stream';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The encoded form of a body: the bytes to send and their content type. */
export interface EncodedBody {
  readonly payload: Uint8Array;
  readonly contentType: string;
}

/** Encodes a body: bytes stay bytes, everything else becomes JSON. */
export function encodeBody(body: unknown): EncodedBody {
  if (body instanceof Uint8Array) return { payload: body, contentType: BINARY_CONTENT_TYPE };
  let json: string | undefined;
  try {
    json = JSON.stringify(body);
  } catch (error) {
    throw new InvalidMessageError(`Message body is not JSON-serialisable: ${(error as Error).message}`, { cause: error });
  }
  if (json === undefined) throw new InvalidMessageError(`Message body of type ${typeof body} is not JSON-serialisable.`);
  return { payload: encoder.encode(json), contentType: JSON_CONTENT_TYPE };
}

/** Is this content type JSON (`application/json`, `application/cloudevents+json`, …)? Absent counts as JSON. */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (!contentType || contentType === JSON_CONTENT_TYPE) return true;
  const base = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return base === JSON_CONTENT_TYPE || base.endsWith('+json');
}

/**
 * Decodes a received payload by its content type: JSON types are parsed (a {@link DecodeError} when
 * they are not valid JSON), `text/*` becomes a string, anything else stays bytes.
 */
export function decodePayload(payload: Uint8Array | string, contentType: string | undefined): unknown {
  if (isJsonContentType(contentType)) {
    const text = typeof payload === 'string' ? payload : decodeText(payload);
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new DecodeError(`Payload is not valid JSON (${(error as Error).message}); first bytes: ${JSON.stringify(text.slice(0, 40))}`, { cause: error });
    }
  }
  if (contentType!.toLowerCase().startsWith('text/')) return typeof payload === 'string' ? payload : decodeText(payload);
  return payloadBytes(payload);
}

/** A payload as bytes: a string payload as its UTF-8 encoding, bytes as they are. */
export function payloadBytes(payload: Uint8Array | string): Uint8Array {
  return typeof payload === 'string' ? encoder.encode(payload) : payload;
}

function decodeText(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch (error) {
    throw new DecodeError('Payload is not valid UTF-8 text.', { cause: error });
  }
}

/** Validates and normalises user headers into a string map. */
export function normaliseHeaders(headers: Readonly<Record<string, unknown>> | undefined): Headers {
  const result: Headers = {};
  if (!headers) return result;
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (name.length === 0) throw new InvalidMessageError('Header names must not be empty.');
    if (name.toLowerCase().startsWith(RESERVED_HEADER_PREFIX)) {
      throw new InvalidMessageError(`Header '${name}' uses the reserved prefix '${RESERVED_HEADER_PREFIX}'.`);
    }
    if (typeof value === 'string') result[name] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') result[name] = String(value);
    else if (value !== undefined) throw new InvalidMessageError(`Header '${name}' must be a string, number or boolean, got ${value === null ? 'null' : typeof value}.`);
  }
  return result;
}

/**
 * Returns the headers a handler sees: everything except the transport metadata that already has
 * its own field on the message (`omniqueue-id`, `omniqueue-published-at`, `omniqueue-attempt`).
 * Dead-letter headers (`omniqueue-dlq-*`) stay visible.
 */
export function userHeaders(headers: Readonly<Record<string, string>>): Headers {
  const result: Headers = {};
  for (const name of Object.keys(headers)) {
    if (!isTransportHeader(name)) result[name] = headers[name]!;
  }
  return result;
}

/** Is this one of the headers {@link userHeaders} hides? Plain comparisons: cheaper per header than a set lookup. */
function isTransportHeader(name: string): boolean {
  return name === WireHeader.Id || name === WireHeader.PublishedAt || name === WireHeader.Attempt;
}
