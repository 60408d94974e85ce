import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Consumption, Delivery, DeliveryListener } from '../../runtime/contract.js';
import type { Logger } from '../../runtime/Logger.js';
import { WireHeader } from '../../runtime/wire.js';
import { CLAIM_SCRIPT, FORGET_CONSUMER_SCRIPT, NACK_SCRIPT, PROMOTE_SCRIPT } from './scripts.js';
import { LuaScript } from './LuaScript.js';
import { copyFields, decodeEntry, entryTime, type EntrySource, type StreamEntry } from './streamEntry.js';

const nackScript = new LuaScript(NACK_SCRIPT);
const promoteScript = new LuaScript(PROMOTE_SCRIPT);
const claimScript = new LuaScript(CLAIM_SCRIPT);
const forgetScript = new LuaScript(FORGET_CONSUMER_SCRIPT);

/** Most delayed entries one promotion step moves. */
const PROMOTE_BATCH = 256;

/** The Redis keys of one group of one topic. */
export interface GroupKeys {
  /** The topic's stream (the key a plain `XADD` producer writes to). */
  readonly main: string;
  /** The group's private retry stream: nacked copies for this group only. */
  readonly retry: string;
  /** The group's delayed-retry sorted set (score = due time in ms). */
  readonly delayed: string;
  /** The topic's scheduled-publish sorted set. */
  readonly scheduled: string;
}

/** What a consumer needs from its adapter. */
export interface ConsumerContext {
  readonly command: Redis;
  readonly keys: GroupKeys;
  readonly group: string;
  readonly prefetch: number;
  readonly listener: DeliveryListener;
  readonly claimIdleMs: number;
  readonly blockMs: number;
  readonly logger: Logger | undefined;
  /** Opens the consumer's dedicated connection for blocking reads. */
  openBlocking(): Promise<Redis>;
  /**
   * Recreates the group on both streams after it vanished (Redis restarted empty), reading from the
   * start of the stream: every entry in a stream that lost its group was added after the loss.
   */
  recreateGroup(): Promise<void>;
}

/**
 * One consumer of a group: a loop that moves due delayed entries back, recovers entries of vanished
 * consumers with XAUTOCLAIM, and blocks on XREADGROUP over the group's retry stream and the topic's
 * stream on its own connection, asking for no more entries than it has free prefetch credit.
 */
export class StreamConsumer implements Consumption {
  /** Consumer name inside the Redis group: host, pid and a random suffix. */
  readonly name = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  readonly #ctx: ConsumerContext;
  readonly #unsettled = new Set<StreamDelivery>();
  readonly #buffer: StreamEntry[] = [];
  #blocking: Redis | undefined;
  #blockingId: number | undefined;
  #stopped = false;
  #closed: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  #creditWaiter: (() => void) | undefined;
  #acks: PendingAck[] = [];
  /** When the soonest delayed/scheduled entry is due, as of the last promotion (epoch ms). */
  #promotedDueAt: number | undefined;
  #claimCursors: Record<EntrySource, string> = { main: '0-0', retry: '0-0' };
  #nextClaimAt = 0;
  #wakeAt = Number.POSITIVE_INFINITY;
  /** Earliest due time of delayed retries this consumer scheduled itself (epoch ms). */
  #localDue = Number.POSITIVE_INFINITY;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(ctx: ConsumerContext) {
    this.#ctx = ctx;
  }

  /** Opens the dedicated connection and starts the read loop. */
  async start(): Promise<void> {
    const blocking = await this.#ctx.openBlocking();
    this.#blocking = blocking;
    const readId = async (): Promise<void> => {
      try {
        this.#blockingId = Number(await blocking.client('ID'));
      } catch {
        /* the loop copes with a missing id: stop() then disconnects instead of unblocking */
      }
    };
    blocking.on('ready', () => void readId());
    await readId();
    const every = Math.max(250, Math.floor(this.#ctx.claimIdleMs / 3));
    this.#heartbeat = setInterval(() => void this.#touch(every), every);
    this.#heartbeat.unref();
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const { command, keys, group } = this.#ctx;
    let failures = 0;
    while (!this.#stopped) {
      const credit = this.#ctx.prefetch - this.#unsettled.size;
      if (credit <= 0) {
        await new Promise<void>((resolve) => (this.#creditWaiter = resolve));
        this.#creditWaiter = undefined;
        continue;
      }
      if (this.#buffer.length > 0) {
        this.#handOut(this.#buffer.splice(0, credit));
        continue;
      }
      try {
        let wait = this.#ctx.blockMs;
        if (Date.now() >= this.#nextClaimAt) {
          this.#nextClaimAt = Date.now() + Math.max(100, Math.floor(this.#ctx.claimIdleMs / 2));
          const claimed = [...(await this.#claim('retry', credit)), ...(await this.#claim('main', credit))];
          if (claimed.length > 0) {
            this.#handOut(claimed);
            continue;
          }
        }
        if (this.#stopped) break;
        if (this.#localDue !== Number.POSITIVE_INFINITY) {
          const untilLocal = this.#localDue - Date.now();
          if (untilLocal <= 0) this.#localDue = Number.POSITIVE_INFINITY;
          else wait = Math.min(wait, untilLocal);
        }
        // Due delayed/scheduled entries are promoted while the read is under way (their XADD wakes
        // the read); the read waits no longer than the soonest due time seen so far, and a promotion
        // that finds an earlier one unblocks it. One round trip per read, as a plain consumer.
        const promoting = this.#promote();
        promoting.catch(() => undefined);
        if (this.#promotedDueAt !== undefined) wait = Math.min(wait, this.#promotedDueAt - Date.now());
        wait = Math.max(1, Math.ceil(wait));
        this.#wakeAt = Date.now() + wait;
        const reply = await this.#blocking!.callBuffer('XREADGROUP', 'GROUP', group, this.name, 'COUNT', credit, 'BLOCK', wait, 'STREAMS', keys.retry, keys.main, '>', '>');
        this.#wakeAt = Number.POSITIVE_INFINITY;
        await promoting;
        const entries = parseRead(reply, keys);
        failures = 0;
        if (this.#stopped) {
          this.#buffer.push(...entries);
          break;
        }
        this.#handOut(entries);
      } catch (error) {
        this.#wakeAt = Number.POSITIVE_INFINITY;
        if (this.#stopped) break;
        const message = error instanceof Error ? error.message : String(error);
        if (message.includes('NOGROUP')) {
          // The stream or the group is gone (Redis restarted without data, or someone deleted the key).
          await this.#ctx.recreateGroup().catch(() => undefined);
        }
        failures++;
        this.#ctx.logger?.warn({ group, stream: keys.main, err: message }, 'redis-streams consumer read failed; retrying');
        await sleep(Math.min(5_000, 50 * 2 ** Math.min(failures, 7)));
      }
    }
  }

  /** Moves due entries of the delayed and scheduled sets onto their streams; remembers the next due time. */
  async #promote(): Promise<void> {
    const { command, keys } = this.#ctx;
    const promoted = (await Promise.all([
      promoteScript.run(command, [keys.delayed, keys.retry], [PROMOTE_BATCH]),
      promoteScript.run(command, [keys.scheduled, keys.main], [PROMOTE_BATCH]),
    ])) as [number, number][];
    let soonest = Number.POSITIVE_INFINITY;
    for (const [, nextDue] of promoted) if (nextDue >= 0) soonest = Math.min(soonest, nextDue);
    if (soonest === Number.POSITIVE_INFINITY) {
      this.#promotedDueAt = undefined;
      return;
    }
    const dueAt = Date.now() + soonest;
    this.#promotedDueAt = dueAt;
    if (this.#wakeAt !== Number.POSITIVE_INFINITY && dueAt < this.#wakeAt - 5) this.#unblock();
  }

  async #claim(source: EntrySource, count: number): Promise<StreamEntry[]> {
    const key = source === 'main' ? this.#ctx.keys.main : this.#ctx.keys.retry;
    const reply = (await claimScript.runBuffer(this.#ctx.command, [key], [this.#ctx.group, this.name, this.#ctx.claimIdleMs, this.#claimCursors[source], count])) as [
      Buffer,
      [Buffer, Buffer[] | null][],
      number[],
    ];
    this.#claimCursors[source] = reply[0].toString();
    const entries: StreamEntry[] = [];
    reply[1].forEach(([id, fields], index) => {
      if (fields) entries.push({ source, id: id.toString(), fields, deliveries: Number(reply[2][index] ?? 1) });
    });
    if (entries.length > 0) this.#ctx.logger?.info({ group: this.#ctx.group, stream: key, count: entries.length }, 'redis-streams consumer recovered entries of a vanished consumer');
    return entries;
  }

  #handOut(entries: StreamEntry[]): void {
    for (const entry of entries) {
      if (this.#stopped || this.#unsettled.size >= this.#ctx.prefetch) {
        this.#buffer.push(entry);
        continue;
      }
      const delivery = new StreamDelivery(this, entry);
      this.#unsettled.add(delivery);
      this.#ctx.listener(delivery);
    }
  }

  #keyOf(source: EntrySource): string {
    return source === 'main' ? this.#ctx.keys.main : this.#ctx.keys.retry;
  }

  /**
   * Settles one delivery: XACK (and XDEL for the private retry stream). The acks of one tick go out
   * as one `XACK key group id …` per stream (the retry stream's in one MULTI with its XDEL); each
   * `ack()` resolves once Redis has answered the command that carried its id.
   */
  async ack(delivery: StreamDelivery): Promise<void> {
    if (!this.#claimSettlement(delivery)) return;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#acks.push({ entry: delivery.entry, resolve, reject });
        if (this.#acks.length === 1) process.nextTick(this.#flushAcks);
      });
    } finally {
      this.#released(delivery);
    }
  }

  readonly #flushAcks = (): void => {
    const batch = this.#acks;
    this.#acks = [];
    const { command, group, keys } = this.#ctx;
    const main: PendingAck[] = [];
    const retry: PendingAck[] = [];
    for (const pending of batch) (pending.entry.source === 'main' ? main : retry).push(pending);
    if (main.length > 0) settleAll(command.xack(keys.main, group, ...main.map(idOf)), main);
    if (retry.length > 0) {
      const ids = retry.map(idOf);
      settleAll(
        command
          .multi()
          .xack(keys.retry, group, ...ids)
          .xdel(keys.retry, ...ids)
          .exec()
          .then(execFailure),
        retry,
      );
    }
  };

  /** Re-adds a copy with `attempt` (now, or after `delayMs`) and acknowledges the original, atomically. */
  async nack(delivery: StreamDelivery, delayMs: number): Promise<void> {
    if (!this.#claimSettlement(delivery)) return;
    try {
      await this.#requeue(delivery.entry, delivery.attempt + 1, delivery.nativeId, delayMs);
    } finally {
      this.#released(delivery);
    }
    if (delayMs > 0) {
      const due = Date.now() + delayMs;
      if (due < this.#localDue) this.#localDue = due;
      if (due < this.#wakeAt - 5) this.#unblock();
    }
  }

  async #requeue(entry: StreamEntry, attempt: number, nativeId: string, delayMs: number): Promise<void> {
    const keys = this.#ctx.keys;
    await nackScript.run(
      this.#ctx.command,
      [this.#keyOf(entry.source), keys.retry, keys.delayed],
      [this.#ctx.group, entry.id, entry.source === 'retry' ? 1 : 0, Math.max(0, Math.ceil(delayMs)), randomUUID(), ...copyFields(entry, attempt, nativeId)],
    );
  }

  #claimSettlement(delivery: StreamDelivery): boolean {
    if (delivery.settled) return false;
    delivery.settled = true;
    return true;
  }

  #released(delivery: StreamDelivery): void {
    this.#unsettled.delete(delivery);
    this.#creditWaiter?.();
  }

  /** Keeps entries that handlers still work on from looking idle, so no other consumer claims them. */
  async #touch(olderThanMs: number): Promise<void> {
    const limit = Date.now() - olderThanMs;
    const ids: Record<EntrySource, string[]> = { main: [], retry: [] };
    for (const delivery of this.#unsettled) if (delivery.handedAt < limit) ids[delivery.entry.source].push(delivery.entry.id);
    for (const source of ['main', 'retry'] as const) {
      if (ids[source].length === 0) continue;
      try {
        await this.#ctx.command.xclaim(this.#keyOf(source), this.#ctx.group, this.name, 0, ...ids[source], 'JUSTID');
      } catch {
        /* best effort; a missed heartbeat at worst lets another consumer redeliver */
      }
    }
  }

  #unblock(): void {
    if (this.#blockingId === undefined) return;
    this.#ctx.command.client('UNBLOCK', this.#blockingId).catch(() => undefined);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return this.#loop;
    this.#stopped = true;
    clearInterval(this.#heartbeat);
    this.#creditWaiter?.();
    this.#unblock();
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      (this.#loop ?? Promise.resolve()).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.#ctx.blockMs + 2_000))),
    ]);
    clearTimeout(timer);
    if (!ended) this.#blocking?.disconnect();
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    await this.stop();
    // Hand everything this consumer still holds back to the group right away: deliveries the runtime
    // did not settle count as an attempt, entries read but never handed out do not.
    const releases: Promise<unknown>[] = [];
    for (const delivery of [...this.#unsettled]) {
      if (!this.#claimSettlement(delivery)) continue;
      releases.push(this.#requeue(delivery.entry, delivery.attempt + 1, delivery.nativeId, 0).finally(() => this.#released(delivery)));
    }
    for (const entry of this.#buffer.splice(0)) {
      releases.push(this.#requeue(entry, attemptOf(entry), nativeIdOf(entry), 0));
    }
    const results = await Promise.allSettled(releases);
    const failed = results.filter((result) => result.status === 'rejected').length;
    if (failed > 0) {
      this.#ctx.logger?.warn({ group: this.#ctx.group, count: failed }, 'redis-streams consumer could not release entries; another consumer will claim them after the idle time');
    } else {
      for (const key of [this.#ctx.keys.main, this.#ctx.keys.retry]) {
        await forgetScript.run(this.#ctx.command, [key], [this.#ctx.group, this.name]).catch(() => undefined);
      }
    }
    this.#blocking?.disconnect();
  }
}

/** One entry handed to the runtime. */
class StreamDelivery implements Delivery {
  readonly payload: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly nativeId: string;
  readonly timestamp: number;
  readonly handedAt = Date.now();
  settled = false;

  constructor(
    private readonly consumer: StreamConsumer,
    readonly entry: StreamEntry,
  ) {
    const decoded = decodeEntry(entry.fields);
    this.payload = decoded.payload;
    this.headers = decoded.headers;
    this.key = decoded.key;
    this.attempt = attemptOf(entry, decoded.headers);
    this.nativeId = entry.id;
    this.timestamp = entryTime(entry.id);
  }

  get raw(): StreamEntry {
    return this.entry;
  }

  ack(): Promise<void> {
    return this.consumer.ack(this);
  }

  nack(delayMs: number): Promise<void> {
    return this.consumer.nack(this, delayMs);
  }
}

/** Attempt of an entry: the `omniqueue-attempt` of the copy, plus the redeliveries Redis counted. */
function attemptOf(entry: StreamEntry, headers: Readonly<Record<string, string>> = decodeEntry(entry.fields).headers): number {
  const fromHeader = Number(headers[WireHeader.Attempt] ?? '1');
  return (Number.isInteger(fromHeader) && fromHeader >= 1 ? fromHeader : 1) + Math.max(0, entry.deliveries - 1);
}

function nativeIdOf(entry: StreamEntry): string {
  return entry.id;
}

/** Turns an XREADGROUP reply over [retry, main] into entries (retry first). */
function parseRead(reply: unknown, keys: GroupKeys): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const entries: StreamEntry[] = [];
  for (const [streamKey, items] of reply as [Buffer, [Buffer, Buffer[] | null][]][]) {
    const source: EntrySource = streamKey.toString() === keys.retry ? 'retry' : 'main';
    for (const [id, fields] of items) if (fields) entries.push({ source, id: id.toString(), fields, deliveries: 1 });
  }
  return entries;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One `ack()` waiting for the XACK of its tick. */
interface PendingAck {
  readonly entry: StreamEntry;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

function idOf(pending: PendingAck): string {
  return pending.entry.id;
}

function settleAll(reply: Promise<unknown>, batch: readonly PendingAck[]): void {
  reply.then(
    () => {
      for (const pending of batch) pending.resolve();
    },
    (error: unknown) => {
      for (const pending of batch) pending.reject(error);
    },
  );
}

/** MULTI/EXEC reports a failed command inside its reply rather than by rejecting. */
function execFailure(replies: [Error | null, unknown][] | null): void {
  const failed = replies?.find(([error]) => error !== null);
  if (failed) throw failed[0];
}
