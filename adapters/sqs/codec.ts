/**
 * SQS/SNS wire codec, shared by the SQS adapter and the Lambda SQS trigger. It imports no AWS SDK.
 *
 * SQS and SNS carry at most 10 message attributes, so OmniQueue packs its own metadata
 * (`omniqueue-*`, `content-type`, `traceparent`, `tracestate`) into ONE String attribute named
 * {@link PACKED_ATTRIBUTE} holding a JSON object. Every user header travels as its own native
 * String attribute, so a plain SQS/SNS client reads them natively; a user header whose name or value
 * SQS cannot carry as an attribute (invalid characters, empty value) travels in the packed attribute
 * instead of being dropped. More user headers than fit is a {@link TooManyHeadersError} at publish.
 *
 * Bodies: JSON and `text/*` payloads are sent as UTF-8 text, unchanged. Other payloads (bytes) are
 * sent base64-encoded, marked by `omniqueue-body-encoding: base64` in the packed attribute, and
 * decoded back to bytes on receipt.
 *
 * @packageDocumentation
 */
import { PayloadTooLargeError, TooManyHeadersError } from '../../runtime/errors.js';
import { isJsonContentType, RESERVED_HEADER_PREFIX, WireHeader } from '../../runtime/wire.js';

/** The payload as bytes (for re-sending a received message, e.g. to a dead-letter queue). */
export { payloadBytes } from '../../runtime/wire.js';

/** Name of the one message attribute holding OmniQueue's packed metadata (a JSON object string). */
export const PACKED_ATTRIBUTE = 'omniqueue';
/** Most message attributes an SQS message or SNS publish carries. */
export const SQS_MAX_ATTRIBUTES = 10;
/** Most user headers an OmniQueue message can carry on SQS/SNS (one attribute is OmniQueue's). */
export const SQS_MAX_USER_HEADERS = SQS_MAX_ATTRIBUTES - 1;
/** SQS/SNS message size limit: body plus attribute names, types and values (256 KiB). */
export const SQS_MAX_MESSAGE_BYTES = 262_144;
/** Packed-metadata key marking a base64-encoded body. */
export const BODY_ENCODING_HEADER = 'omniqueue-body-encoding';
/** Packed-metadata key carrying the ordering key on standard (non-FIFO) queues. */
export const KEY_HEADER = 'omniqueue-key';

/** Headers that always travel packed, besides every `omniqueue-*` header. */
const PACKED_NAMES: ReadonlySet<string> = new Set([WireHeader.ContentType, WireHeader.TraceParent, WireHeader.TraceState]);

/** A valid SQS message attribute name (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html). */
const ATTRIBUTE_NAME = /^(?!\.)(?!.*\.\.)(?!.*\.$)(?!aws\.)(?!amazon\.)[A-Za-z0-9_.-]{1,256}$/i;
/** Characters SQS refuses in bodies and attribute values (anything outside #x9 | #xA | #xD | #x20–#xD7FF | #xE000–#xFFFD | #x10000+). */
// eslint-disable-next-line no-control-regex
const INVALID_TEXT = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** One String message attribute in the SDK's shape. */
export interface StringAttribute {
  readonly DataType: 'String';
  readonly StringValue: string;
}

/** A message ready for SNS Publish / SQS SendMessage. */
export interface EncodedSqsMessage {
  /** The body text. */
  readonly body: string;
  /** Message attributes: user headers plus the packed one. */
  readonly attributes: Record<string, StringAttribute>;
  /** Size as SQS counts it (body + attribute names, types and values), in bytes. */
  readonly size: number;
}

/** A received attribute, whichever of the SDK, the Lambda event or the SNS envelope it came from. */
export interface ReceivedAttribute {
  /** `String`, `Number`, `Binary` or a custom `String.x` type. */
  readonly type: string;
  /** The value for String and Number types. */
  readonly stringValue?: string | undefined;
  /** The value for Binary types, base64. */
  readonly binaryBase64?: string | undefined;
}

/** What {@link decodeSqsMessage} gives back: the parts of a `Delivery`. */
export interface DecodedSqsMessage {
  /** The payload: the body text, or bytes for base64-encoded bodies. */
  readonly payload: Uint8Array | string;
  /** Every header: user attributes plus the unpacked OmniQueue metadata. */
  readonly headers: Record<string, string>;
  /** The ordering key carried in the packed metadata (standard queues), if any. */
  readonly key: string | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Is this header OmniQueue's own metadata (always packed)? */
export function isPackedHeader(name: string): boolean {
  return PACKED_NAMES.has(name) || name.toLowerCase().startsWith(RESERVED_HEADER_PREFIX);
}

/** Can `name: value` travel as its own SQS/SNS String attribute? */
export function isNativeAttribute(name: string, value: string): boolean {
  return name !== PACKED_ATTRIBUTE && ATTRIBUTE_NAME.test(name) && value.length > 0 && !INVALID_TEXT.test(value);
}

/**
 * Encodes headers, payload and key for SQS/SNS. `keyInMetadata` carries the key in the packed
 * attribute (standard queues; FIFO uses MessageGroupId). Throws {@link TooManyHeadersError} and
 * {@link PayloadTooLargeError}.
 */
export function encodeSqsMessage(
  headers: Readonly<Record<string, string>>,
  payload: Uint8Array,
  key: string | undefined,
  keyInMetadata: boolean,
): EncodedSqsMessage {
  const packed: Record<string, string> = {};
  const attributes: Record<string, StringAttribute> = {};
  const native: string[] = [];
  for (const name of Object.keys(headers)) {
    const value = headers[name]!;
    if (isPackedHeader(name) || !isNativeAttribute(name, value)) packed[name] = value;
    else {
      attributes[name] = { DataType: 'String', StringValue: value };
      native.push(name);
    }
  }
  if (native.length > SQS_MAX_USER_HEADERS) {
    throw new TooManyHeadersError(
      `SQS/SNS carry at most ${SQS_MAX_ATTRIBUTES} message attributes and OmniQueue uses one ('${PACKED_ATTRIBUTE}') for its metadata, ` +
        `so a message carries at most ${SQS_MAX_USER_HEADERS} headers; got ${native.length} (${native.join(', ')}).`,
    );
  }
  let body: string;
  const contentType = headers[WireHeader.ContentType];
  const textual = isJsonContentType(contentType) || contentType!.toLowerCase().startsWith('text/');
  const text = textual ? tryUtf8(payload) : undefined;
  if (text !== undefined && !INVALID_TEXT.test(text)) body = text;
  else {
    body = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64');
    packed[BODY_ENCODING_HEADER] = 'base64';
  }
  if (keyInMetadata && key !== undefined) packed[KEY_HEADER] = key;
  attributes[PACKED_ATTRIBUTE] = { DataType: 'String', StringValue: JSON.stringify(packed) };

  let size = Buffer.byteLength(body);
  for (const name of Object.keys(attributes)) size += Buffer.byteLength(name) + 6 + Buffer.byteLength(attributes[name]!.StringValue);
  if (size > SQS_MAX_MESSAGE_BYTES) throw new PayloadTooLargeError(size, SQS_MAX_MESSAGE_BYTES, 'SQS/SNS (256 KiB, body plus message attributes)');
  return { body, attributes, size };
}

/**
 * Decodes a received body and its message attributes: unpacks OmniQueue's metadata, turns a
 * base64-marked body back into bytes, and takes out the carried key. Attributes of a foreign
 * producer become headers (String/Number as their text, Binary as base64).
 */
export function decodeSqsMessage(body: string, attributes: Readonly<Record<string, ReceivedAttribute>> | undefined): DecodedSqsMessage {
  const headers: Record<string, string> = {};
  let packed: Record<string, unknown> | undefined;
  if (attributes) {
    for (const name of Object.keys(attributes)) {
      const attribute = attributes[name]!;
      if (name === PACKED_ATTRIBUTE && attribute.stringValue !== undefined) {
        packed = parsePacked(attribute.stringValue);
        if (packed) continue;
      }
      const value = attribute.stringValue ?? attribute.binaryBase64;
      if (value !== undefined) headers[name] = value;
    }
  }
  let payload: Uint8Array | string = body;
  let key: string | undefined;
  if (packed) {
    for (const name of Object.keys(packed)) {
      const value = packed[name];
      if (typeof value === 'string') headers[name] = value;
    }
    if (headers[BODY_ENCODING_HEADER] === 'base64') payload = new Uint8Array(Buffer.from(body, 'base64'));
    key = headers[KEY_HEADER];
    delete headers[BODY_ENCODING_HEADER];
    delete headers[KEY_HEADER];
  }
  return { payload, headers, key };
}

function parsePacked(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function tryUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}
