/**
 * The ZeroMQ wire protocol of the `zeromq` adapter: plain multipart frames, so any ZeroMQ client in
 * any language can publish to and consume from an OmniQueue publisher without this library.
 *
 * The publisher binds a ROUTER socket; every peer connects a DEALER socket (one per adapter).
 *
 * **A message** is always the three frames `[topic, headers JSON, payload bytes]`:
 * - `topic`: the topic name (`[A-Za-z0-9._-]`, never starting with `$`);
 * - `headers JSON`: a JSON object of string → string, the message's native headers (OmniQueue puts
 *   `omniqueue-id`, `omniqueue-published-at`, `content-type` and trace context there; the message
 *   key travels as `omniqueue-key`);
 * - `payload`: the body bytes unchanged (JSON bytes for JSON bodies).
 *
 * **Publishing** (peer → publisher): `[topic, headers JSON, payload]`, optionally followed by a
 * request tag and a delay in milliseconds: `[topic, headers, payload, tag, delayMs]`. With a tag
 * the publisher answers `["$OK", tag]` once every group of the topic took the message, or
 * `["$ERR", tag, code, text]` (`code` is an OmniQueue error code such as `PUBLISH`). Without a tag
 * it answers nothing.
 *
 * **Consuming**: a peer announces a member of a group with `["$SUB", tag, consumerId, topic, group,
 * prefetch]` (answered `["$OK", tag]`). The publisher then sends it deliveries
 * `[topic, headers JSON, payload, consumerId, deliveryTag]`, never more than `prefetch` unsettled
 * ones; the headers carry `omniqueue-attempt` (1 on first delivery). The peer settles each with
 * `["$ACK", consumerId, deliveryTag, …]` (one or more tags) or
 * `["$NACK", consumerId, deliveryTag, delayMs]` (no answer). `["$STOP", tag, consumerId]` stops new deliveries, `["$CLOSE", tag, consumerId]` leaves
 * the group and hands every unsettled delivery to another member; `["$ENSURE", tag, topic, group?]`
 * creates a group without joining it.
 *
 * **Liveness**: a consuming peer sends `["$PING", consumerId…]` every heartbeat interval; the
 * publisher answers `["$PONG"]`, plus `["$UNKNOWN", consumerId]` for each member it does not know
 * (it restarted, or timed the peer out), upon which the peer announces that member again. A peer
 * silent for longer than the publisher's peer timeout is considered gone: its unsettled deliveries
 * go to other members of their groups.
 *
 * @packageDocumentation
 */

/** First frame of every control message; topics never start with `$`. */
export const Command = {
  Subscribe: '$SUB',
  Stop: '$STOP',
  Close: '$CLOSE',
  Ensure: '$ENSURE',
  Ack: '$ACK',
  Nack: '$NACK',
  Ping: '$PING',
  Ok: '$OK',
  Error: '$ERR',
  Pong: '$PONG',
  Unknown: '$UNKNOWN',
} as const;

/** Union of {@link Command} values. */
export type Command = (typeof Command)[keyof typeof Command];

/** Header that carries the message key inside the headers frame. */
export const KEY_HEADER = 'omniqueue-key';

/** One multipart message as sent: strings are UTF-8 frames. */
export type Frames = (string | Uint8Array)[];

const decoder = new TextDecoder();

/** Reads a frame as UTF-8 text. */
export function text(frame: Uint8Array | undefined): string {
  return frame === undefined ? '' : decoder.decode(frame);
}

/** Is the first frame a control command (starts with `$`, byte 0x24)? */
export function isCommand(first: Uint8Array | undefined): boolean {
  return first !== undefined && first.length > 0 && first[0] === 0x24;
}

/** Parses a headers frame: a JSON object whose values are turned into strings. Throws on anything else. */
export function parseHeaders(frame: Uint8Array | undefined): Record<string, string> {
  if (frame === undefined || frame.length === 0) return {};
  const parsed: unknown = JSON.parse(text(frame));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TypeError('the headers frame must be a JSON object');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (value !== undefined && value !== null) headers[name] = typeof value === 'string' ? value : String(value);
  }
  return headers;
}
