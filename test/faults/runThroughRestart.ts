import type { Broker } from '../../runtime/Broker.js';
import type { Subscription } from '../../runtime/Subscription.js';
import { waitFor } from '../conformance/waitFor.js';

/** Settings of one publish/consume run with a broker restart in the middle. */
export interface RestartRunOptions {
  /** Publishes through this broker. */
  readonly producer: Broker;
  /** Consumes through this broker. */
  readonly consumer: Broker;
  readonly topic: string;
  readonly group: string;
  /** Messages in the run. Default 10,000. */
  readonly total?: number;
  /** Restart once this many publishes resolved (and a sixth of them was handled). Default 3,000. */
  readonly restartAfter?: number;
  /** Publishes in flight at once. Default 200. */
  readonly window?: number;
  /** Consumer concurrency. Default 50. */
  readonly concurrency?: number;
  /** Stops and starts the broker; resolves when it answers again. */
  readonly restart: () => Promise<void>;
  /** Time allowed for everything to be handled after the restart. Default 90 s. */
  readonly settleTimeoutMs?: number;
}

/** What the run counted: every id published and every id handled. */
export interface RestartRunResult {
  readonly published: ReadonlySet<string>;
  readonly handled: ReadonlySet<string>;
  /** Ids whose publish resolved but which were never handled: must be empty. */
  readonly lost: readonly string[];
  /** Handler calls beyond one per id (at-least-once redeliveries). */
  readonly redeliveries: number;
  /** Publishes that rejected (typed) and were made again with the same id. */
  readonly publishRetries: number;
  /** Publishes resolved when the restart began. */
  readonly publishedAtRestart: number;
  /** The consumer's subscription, still open (the caller may wait for broker-side settlement, then closes it). */
  readonly subscription: Subscription;
}

/** One line for the test log. */
export function describeRun(name: string, result: RestartRunResult): string {
  return `[${name} restart] began after ${result.publishedAtRestart} publishes; published ${result.published.size}, handled ${result.handled.size} distinct, ${result.redeliveries} redeliveries, ${result.publishRetries} publish retries`;
}

/**
 * The fault scenario every broker adapter runs: publish `total` messages with fixed ids while a
 * consumer of the group handles them, restart the broker part-way, keep publishing (a publish that
 * rejects during the outage is made again with the same id), and count: nothing whose publish
 * resolved may be lost. The adapter must reconnect by itself.
 */
export async function runThroughRestart(options: RestartRunOptions): Promise<RestartRunResult> {
  const total = options.total ?? 10_000;
  const restartAfter = options.restartAfter ?? 3_000;
  const window = options.window ?? 200;
  const handled = new Set<string>();
  const published = new Set<string>();
  let calls = 0;
  let publishRetries = 0;
  const subscription = await options.consumer.subscribe(
    options.topic,
    (message) => {
      calls++;
      handled.add(message.id);
    },
    options.group,
    { ensure: true, concurrency: options.concurrency ?? 50 },
  );
  const publishAll = async (): Promise<void> => {
    for (let start = 0; start < total; start += window) {
      await Promise.all(
        Array.from({ length: Math.min(window, total - start) }, async (_, offset) => {
          const id = `m-${start + offset}`;
          for (;;) {
            try {
              await options.producer.publish(options.topic, { id, body: { n: start + offset } });
              published.add(id);
              return;
            } catch {
              publishRetries++;
            }
          }
        }),
      );
    }
  };
  const publishing = publishAll();
  await waitFor(
    () => published.size >= restartAfter && handled.size >= restartAfter / 6,
    60_000,
    () => `${restartAfter} published and ${restartAfter / 6} handled before the restart, got ${published.size} and ${handled.size}`,
  );
  const publishedAtRestart = published.size;
  await options.restart();
  await publishing;
  await waitFor(() => handled.size >= total, options.settleTimeoutMs ?? 90_000, () => `all ${total} handled, got ${handled.size}`);
  return {
    subscription,
    published,
    handled,
    lost: [...published].filter((id) => !handled.has(id)),
    redeliveries: calls - handled.size,
    publishRetries,
    publishedAtRestart,
  };
}
