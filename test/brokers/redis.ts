/**
 * Test helper for the Redis family: checks that Redis answers, starts it with the machine's
 * command when it does not, and tells tests whether to run, fail or report the gap.
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { BrokerUnavailableError } from '../../runtime/errors.js';

const run = promisify(execFile);

/** Where the shared test Redis listens. */
export const REDIS_URL = process.env.OMNIQUEUE_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The command that starts the machine's Redis (nothing kept on disk). */
export const REDIS_START_ARGS = ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', '6379', '--save', '', '--appendonly', 'no', '--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log'];

/** A Redis the tests may use; disposing it closes the probe connection (it never stops Redis). */
export interface RedisHandle extends AsyncDisposable {
  /** Connection URL. */
  readonly url: string;
}

/** Does a Redis answer PING at `url` within `timeoutMs`? */
export async function redisAnswers(url: string = REDIS_URL, timeoutMs = 1_000): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs, enableOfflineQueue: false });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * Makes sure Redis answers at {@link REDIS_URL}: when it does not, runs the machine's start command
 * once and waits up to 10 s. Rejects with {@link BrokerUnavailableError} when it still does not
 * answer.
 */
export async function ensureRedis(): Promise<RedisHandle> {
  if (!(await redisAnswers())) {
    try {
      await run('redis-server', REDIS_START_ARGS);
    } catch (error) {
      throw new BrokerUnavailableError(`Redis is not running at ${REDIS_URL} and 'redis-server' could not start it: ${(error as Error).message}`, { cause: error });
    }
    const deadline = Date.now() + 10_000;
    while (!(await redisAnswers())) {
      if (Date.now() > deadline) throw new BrokerUnavailableError(`Redis did not answer at ${REDIS_URL} within 10 s of starting it.`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return { url: REDIS_URL, [Symbol.asyncDispose]: async () => {} };
}

/**
 * Resolved once per test file: whether the Redis tests run. With `OMNIQUEUE_REQUIRE_BROKERS=1` a
 * missing Redis throws (the suite fails); without it the reason is printed and the caller skips
 * with `describe.skipIf(!available)`.
 */
export async function redisAvailable(): Promise<boolean> {
  try {
    await ensureRedis();
    return true;
  } catch (error) {
    if (process.env.OMNIQUEUE_REQUIRE_BROKERS === '1') throw error;
    console.warn(`[omniqueue] Redis tests skipped: ${(error as Error).message}`);
    return false;
  }
}

/** A unique key prefix for one test (`omniqueue-test:<label>:<random>:`). */
export function testPrefix(label: string): string {
  return `omniqueue-test:${label}:${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key that starts with `prefix` (SCAN + UNLINK), also hash-tagged `{prefix…}` keys. */
export async function deleteKeys(prefix: string, url: string = REDIS_URL): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true });
  redis.on('error', () => undefined);
  let deleted = 0;
  try {
    await redis.connect();
    for (const pattern of [`${prefix}*`, `{${prefix}*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', escapeGlob(pattern), 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) deleted += await redis.unlink(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}

function escapeGlob(pattern: string): string {
  return pattern.slice(0, -1).replace(/[[\]?\\]/g, '\\$&') + '*';
}
