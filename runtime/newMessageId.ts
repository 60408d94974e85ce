import { randomFillSync } from 'node:crypto';
import { v7 } from 'uuid';

const POOL_IDS = 512;
/** Random bytes of the next POOL_IDS ids, allocated on first use. */
let pool: Uint8Array | undefined;
let next = POOL_IDS;
let lastMsecs = -Infinity;
let seq = 0;

/**
 * A new UUIDv7 (RFC 9562): time-ordered, monotonic within this process. The `uuid` library lays
 * out the bits; random bytes come from a pooled `randomFillSync`, which is ~20× cheaper per id
 * than one `getRandomValues` call per id.
 */
export function newMessageId(): string {
  if (next === POOL_IDS) {
    randomFillSync((pool ??= new Uint8Array(16 * POOL_IDS)));
    next = 0;
  }
  const random = pool!.subarray(next * 16, ++next * 16);
  const now = Date.now();
  if (now > lastMsecs) {
    lastMsecs = now;
    seq = ((random[6]! & 0x7f) << 24) | (random[7]! << 16) | (random[8]! << 8) | random[9]!;
  } else {
    seq = (seq + 1) | 0;
    if (seq === 0) lastMsecs++;
  }
  return v7({ random, msecs: lastMsecs, seq });
}
