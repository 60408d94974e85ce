import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Argument Redis accepts: text, bytes or a number. */
export type RedisArgument = string | Buffer | number;

/**
 * A Lua script run with EVALSHA, falling back to EVAL once when Redis does not know it yet (first
 * use, or after a restart flushed the script cache).
 */
export class LuaScript {
  /** SHA-1 of the source, as Redis names the script. */
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script; replies come back as strings. */
  run(redis: Redis, keys: readonly RedisArgument[], args: readonly RedisArgument[]): Promise<unknown> {
    return this.#run(redis, keys, args, false);
  }

  /** Runs the script; bulk replies come back as Buffers (binary-safe). */
  runBuffer(redis: Redis, keys: readonly RedisArgument[], args: readonly RedisArgument[]): Promise<unknown> {
    return this.#run(redis, keys, args, true);
  }

  async #run(redis: Redis, keys: readonly RedisArgument[], args: readonly RedisArgument[], buffer: boolean): Promise<unknown> {
    // The typed EVALSHA/EVAL methods, not redis.call('EVALSHA', …): with enableAutoPipelining,
    // ioredis 6 drops the command name of call()/callBuffer() (it becomes the first argument).
    const argv: RedisArgument[] = [...keys, ...args];
    const binary = redis as unknown as BufferEval;
    try {
      return await (buffer ? binary.evalshaBuffer(this.sha, keys.length, ...argv) : redis.evalsha(this.sha, keys.length, ...argv));
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return buffer ? binary.evalBuffer(this.source, keys.length, ...argv) : redis.eval(this.source, keys.length, ...argv);
    }
  }
}

/** ioredis' Buffer-reply EVAL variants, present at runtime but missing from the ioredis 6 typings. */
interface BufferEval {
  evalshaBuffer(sha: string, numKeys: number, ...args: RedisArgument[]): Promise<unknown>;
  evalBuffer(script: string, numKeys: number, ...args: RedisArgument[]): Promise<unknown>;
}
