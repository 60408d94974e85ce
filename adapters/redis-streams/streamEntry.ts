import { WireHeader } from '../../runtime/wire.js';

/** Stream field that carries the payload bytes. Every other field is a header. */
export const BODY_FIELD = 'body';
/** Stream field that carries the message key (Redis Streams have no native key). */
export const KEY_FIELD = 'omniqueue-key';

/** Where an entry was read from: the topic's stream or the group's private retry stream. */
export type EntrySource = 'main' | 'retry';

/** One stream entry as read, before it becomes a delivery. */
export interface StreamEntry {
  /** Stream it came from. */
  readonly source: EntrySource;
  /** Stream entry id (`<ms>-<seq>`). */
  readonly id: string;
  /** Flat field list as Redis returned it: name, value, name, value … */
  readonly fields: readonly Buffer[];
  /** Redis' delivery count of the pending entry (1 unless the entry was claimed). */
  readonly deliveries: number;
}

/** What a stream entry carries, in the shape of a delivery. */
export interface DecodedEntry {
  readonly payload: Uint8Array;
  readonly headers: Record<string, string>;
  readonly key: string | undefined;
}

const textEncoder = new TextEncoder();

/**
 * Splits an entry's fields into payload, headers and key. An entry written by a plain producer
 * without a `body` field (`XADD s * name ada age 36`) becomes a JSON object of its fields, so a
 * handler still gets something meaningful; `omniqueue-*` fields stay headers either way.
 */
export function decodeEntry(fields: readonly Buffer[]): DecodedEntry {
  let payload: Uint8Array | undefined;
  let key: string | undefined;
  const headers: Record<string, string> = {};
  const plain: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString('utf8');
    const value = fields[i + 1]!;
    if (name === BODY_FIELD) payload = value;
    else if (name === KEY_FIELD) key = value.toString('utf8');
    else {
      const text = value.toString('utf8');
      headers[name] = text;
      if (!name.startsWith('omniqueue-')) plain[name] = text;
    }
  }
  if (payload !== undefined) return { payload, headers, key };
  const own: Record<string, string> = {};
  for (const name of Object.keys(headers)) if (name.startsWith('omniqueue-') || name === WireHeader.ContentType) own[name] = headers[name]!;
  return { payload: textEncoder.encode(JSON.stringify(plain)), headers: own, key };
}

/** Epoch milliseconds of a stream entry id. */
export function entryTime(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/**
 * The fields of the copy that a nack or a release re-adds: the original fields with
 * `omniqueue-attempt` set to `attempt`, and `omniqueue-id` / `omniqueue-published-at` filled in from
 * the original entry when a foreign producer did not set them, so the message keeps its identity.
 */
export function copyFields(entry: StreamEntry, attempt: number, nativeId: string): (Buffer | string)[] {
  const result: (Buffer | string)[] = [];
  let hasId = false;
  let hasPublishedAt = false;
  for (let i = 0; i + 1 < entry.fields.length; i += 2) {
    const name = entry.fields[i]!.toString('utf8');
    if (name === WireHeader.Attempt) continue;
    if (name === WireHeader.Id) hasId = true;
    if (name === WireHeader.PublishedAt) hasPublishedAt = true;
    result.push(entry.fields[i]!, entry.fields[i + 1]!);
  }
  if (!hasId) result.push(WireHeader.Id, nativeId);
  if (!hasPublishedAt) result.push(WireHeader.PublishedAt, String(entryTime(entry.id)));
  result.push(WireHeader.Attempt, String(attempt));
  return result;
}
