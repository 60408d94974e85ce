/**
 * Translation between OmniQueue's wire format and Service Bus messages, shared by the adapter and
 * the Azure Functions trigger. Imports nothing from `@azure/service-bus` at run time.
 *
 * | OmniQueue | Service Bus |
 * |---|---|
 * | payload bytes | body (AMQP data section), unchanged |
 * | `content-type` header | `contentType` |
 * | every other header | `applicationProperties`, names as given (`TenantId` stays `TenantId`) |
 * | id | `messageId` (and the `omniqueue-id` property) |
 * | key | `partitionKey`, or `sessionId` on session topics |
 * | attempt | `deliveryCount` (+ `omniqueue-attempt` after a delayed nack, see {@link attemptOf}) |
 *
 * @packageDocumentation
 */
import type { WireMessage } from '../../runtime/contract.js';
import { WireHeader } from '../../runtime/wire.js';
import type { ApplicationPropertyValue, ServiceBusMessage } from './clients.js';

/** Application properties the Service Bus adapter keeps for itself (never shown to a handler). */
export const ServiceBusProperty = {
  /**
   * JSON array of the header names whose first letter is upper case. The Azure Functions host
   * lower-cases the first letter of every trigger-metadata key (`TenantId` → `tenantId`); the
   * trigger uses this list to give the handler the names the producer wrote.
   */
  HeaderCase: 'omniqueue-header-case',
  /** Topic of a delayed redelivery (scheduled re-send); with {@link ServiceBusProperty.RetryGroup}, routes it to one subscription. */
  RetryTopic: 'omniqueue-retry-topic',
  /** Group (subscription) a delayed redelivery is for. */
  RetryGroup: 'omniqueue-retry-group',
} as const;

/** Which native field carries the OmniQueue key. */
export const KeyProperty = {
  /** `partitionKey`: the default; no ordering promise without sessions. */
  PartitionKey: 'partitionKey',
  /** `sessionId`: for session-enabled topics (`createOptions: { requiresSession: true }`). */
  SessionId: 'sessionId',
} as const;

/** Union of {@link KeyProperty} values. */
export type KeyProperty = (typeof KeyProperty)[keyof typeof KeyProperty];

const INTERNAL: ReadonlySet<string> = new Set([ServiceBusProperty.HeaderCase, ServiceBusProperty.RetryTopic, ServiceBusProperty.RetryGroup]);
const textEncoder = new TextEncoder();

/** The subscription rule every group gets: delayed redeliveries reach only the group they are for. */
export function retryFilterExpression(topic: string, group: string): string {
  // Names are validated ([A-Za-z0-9._-]), so they never contain a quote.
  return `[${ServiceBusProperty.RetryTopic}] IS NULL OR [${ServiceBusProperty.RetryTopic}] <> '${topic}' OR [${ServiceBusProperty.RetryGroup}] = '${group}'`;
}

/** Name of the subscription rule that carries {@link retryFilterExpression}. */
export const RETRY_RULE_NAME = 'omniqueue';

/** A view of the bytes as a Buffer (no copy): the SDK sends a Buffer body as one AMQP data section. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Turns a prepared wire message into the Service Bus message the adapter sends. */
export function toServiceBusMessage(wire: WireMessage, keyProperty: KeyProperty): ServiceBusMessage {
  const applicationProperties: Record<string, ApplicationPropertyValue> = {};
  let upperCase: string[] | undefined;
  let contentType: string | undefined;
  for (const name of Object.keys(wire.headers)) {
    const value = wire.headers[name]!;
    if (name === WireHeader.ContentType) {
      contentType = value;
      continue;
    }
    applicationProperties[name] = value;
    const first = name.charAt(0);
    if (first !== first.toLowerCase()) (upperCase ??= []).push(name);
  }
  if (upperCase) applicationProperties[ServiceBusProperty.HeaderCase] = JSON.stringify(upperCase);
  const message: ServiceBusMessage = { body: asBuffer(wire.payload), messageId: wire.id, applicationProperties };
  if (contentType !== undefined) message.contentType = contentType;
  if (wire.key !== undefined) message[keyProperty] = wire.key;
  return message;
}

/**
 * Application properties as OmniQueue headers: values become strings (dates as ISO 8601), the
 * adapter's own properties are dropped, and `content-type` comes from the native `contentType`
 * unless a `content-type` property overrides it (a dead letter of an undecodable body does that).
 */
export function headersOf(properties: Readonly<Record<string, unknown>> | undefined, contentType: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (properties) {
    for (const name of Object.keys(properties)) {
      if (INTERNAL.has(name)) continue;
      const value = propertyText(properties[name]);
      if (value !== undefined) headers[name] = value;
    }
  }
  if (headers[WireHeader.ContentType] === undefined && contentType) headers[WireHeader.ContentType] = contentType;
  return headers;
}

/** One application property value as header text; `null` and `undefined` are left out. */
export function propertyText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Gives back the producer's header names after the Functions host lower-cased their first letter,
 * for the names listed in the {@link ServiceBusProperty.HeaderCase} property. Other names stay as
 * the host delivered them (a foreign producer's `TenantId` arrives as `tenantId`).
 */
export function restoreHeaderCase(properties: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const listed = properties[ServiceBusProperty.HeaderCase] ?? properties[lowerFirst(ServiceBusProperty.HeaderCase)];
  if (typeof listed !== 'string') return { ...properties };
  let names: unknown;
  try {
    names = JSON.parse(listed);
  } catch {
    return { ...properties };
  }
  if (!Array.isArray(names)) return { ...properties };
  const restored: Record<string, unknown> = { ...properties };
  for (const name of names) {
    if (typeof name !== 'string') continue;
    const hostName = lowerFirst(name);
    if (hostName !== name && hostName in restored && !(name in restored)) {
      restored[name] = restored[hostName];
      delete restored[hostName];
    }
  }
  return restored;
}

/** What the Azure Functions host does to every trigger-metadata key. */
export function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/**
 * The attempt number of a received message. `deliveryCount` is 1-based here (the JS SDK reports the
 * AMQP count, 0 on first delivery: add 1 before calling). A message re-sent by a delayed nack of
 * this very topic and group carries its attempt in `omniqueue-attempt`, and its own delivery count
 * restarts, so the two add up; anywhere else (a dead letter forwarded to the DLQ topic, a copy read
 * by another group) the header is ignored.
 */
export function attemptOf(properties: Readonly<Record<string, unknown>> | undefined, deliveryCount: number, topic: string, group: string): number {
  const count = Number.isFinite(deliveryCount) && deliveryCount >= 1 ? Math.floor(deliveryCount) : 1;
  if (!properties || properties[ServiceBusProperty.RetryTopic] !== topic || properties[ServiceBusProperty.RetryGroup] !== group) return count;
  const carried = Number(properties[WireHeader.Attempt]);
  return Number.isInteger(carried) && carried >= 1 ? carried + count - 1 : count;
}

/**
 * The body bytes of a received message: a data section's bytes unchanged (as a plain Uint8Array); a string (an AMQP value
 * from a foreign producer) as UTF-8; anything else as JSON.
 */
export function bodyBytes(body: unknown): Uint8Array {
  // A plain Uint8Array view of a Buffer (no copy), the same type every other adapter hands out.
  if (body instanceof Uint8Array) return Buffer.isBuffer(body) ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : body;
  if (typeof body === 'string') return textEncoder.encode(body);
  if (body === undefined || body === null) return new Uint8Array(0);
  return textEncoder.encode(JSON.stringify(body));
}
