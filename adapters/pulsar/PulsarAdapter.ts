import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, DeliveryListener, EnsureRequest, GroupPrune, TopologyChange, WireMessage } from '../../runtime/contract.js';
import { ClosedError, ConfigError, PayloadTooLargeError } from '../../runtime/errors.js';
import { PulsarAdmin } from './PulsarAdmin.js';
import { PulsarConsumption, type PulsarConsumerMessage } from './PulsarConsumption.js';
import { PulsarProducer, type ProducerFrame } from './PulsarProducer.js';
import { persistentTopic, retryTopicName, topicPath, type PulsarNamespace } from './topicNames.js';

/** Settings of the Pulsar adapter. */
export interface PulsarAdapterOptions {
  /** HTTP URL of the broker's web service (admin API and WebSocket service). Default `http://127.0.0.1:8080`. */
  readonly url?: string;
  /** WebSocket URL, when the WebSocket service runs apart from the broker (a WebSocket proxy). Default: `url` with `ws:`/`wss:`. */
  readonly webSocketUrl?: string;
  /** Pulsar tenant of the topics. Default `public`. */
  readonly tenant?: string;
  /** Pulsar namespace of the topics. Default `default`. */
  readonly namespace?: string;
  /**
   * The consumers' native negative-ack redelivery delay, in ms. `nack(delayMs)` with `delayMs` up to
   * this is a native negative ack (redelivered after this delay, attempt counted by the broker);
   * longer delays go through the group's retry topic. Default 100.
   */
  readonly nackRedeliveryDelayMs?: number;
  /** How long a publish waits for a connection to the broker before it rejects with `ConnectionError`. Default 30 000. */
  readonly sendTimeoutMs?: number;
  /** Longest pause between reconnect attempts. Default 5 000. */
  readonly maxReconnectDelayMs?: number;
  /**
   * Largest payload accepted, in bytes. The WebSocket service carries payloads base64-encoded in
   * JSON text frames of at most `webSocketMaxTextFrameSize` (1 MiB by default), hence the default
   * 700 000. Raise both together.
   */
  readonly maxPayloadBytes?: number;
}

/**
 * What the Pulsar adapter can do. Per-message nack delays are emulated: a `nack(delayMs)` longer
 * than the consumer's native negative-ack delay re-publishes the message to the group's retry
 * topic (`<topic>-<group>-RETRY`, read only by that group) with Pulsar's native `deliverAfterMs`
 * and `omniqueue-attempt` set, then acks the original. Publish delays are native (`deliverAfterMs`).
 */
export const PULSAR_FEATURES: AdapterFeatures = Object.freeze({
  consumerGroups: true,
  persistent: true,
  retainsWhileOffline: true,
  orderingPerKey: true,
  delay: 'emulated',
  attempts: 'broker',
  nativeDeadLetter: false,
  exactlyOnce: false,
  redeliversUnsettled: true,
  maxPayloadBytes: 700_000,
});

const DEFAULT_URL = 'http://127.0.0.1:8080';

/**
 * Apache Pulsar over its official WebSocket API (the `ws` package; no native client): topic =
 * persistent topic, group = Shared subscription (Key_Shared when per-key ordering is asked for),
 * ack = individual ack, nack = negative ack (or a delayed retry through the group's retry topic),
 * dead letters = the runtime's DLQ topic. Topics and subscriptions are created through the admin
 * REST API. Publishes resolve on the producer ack; sockets reconnect with backoff.
 */
export class PulsarAdapter implements Adapter {
  readonly name = 'pulsar';
  readonly features: AdapterFeatures;
  readonly #where: PulsarNamespace;
  readonly #wsUrl: string;
  readonly #admin: PulsarAdmin;
  readonly #nackDelayMs: number;
  readonly #sendTimeoutMs: number;
  readonly #maxReconnectDelayMs: number;
  readonly #producers = new Map<string, PulsarProducer>();
  readonly #consumptions = new Set<PulsarConsumption>();
  #closed = false;

  constructor(options: PulsarAdapterOptions = {}) {
    const url = (options.url ?? DEFAULT_URL).replace(/\/+$/, '');
    if (!/^https?:\/\//.test(url)) throw new ConfigError(`Pulsar url must start with http:// or https://, got '${url}'.`);
    this.#wsUrl = (options.webSocketUrl ?? url.replace(/^http/, 'ws')).replace(/\/+$/, '');
    this.#where = { tenant: options.tenant ?? 'public', namespace: options.namespace ?? 'default' };
    this.#nackDelayMs = options.nackRedeliveryDelayMs ?? 100;
    this.#sendTimeoutMs = options.sendTimeoutMs ?? 30_000;
    this.#maxReconnectDelayMs = options.maxReconnectDelayMs ?? 5_000;
    this.#admin = new PulsarAdmin(url, this.#where, 10_000);
    const maxPayloadBytes = options.maxPayloadBytes ?? PULSAR_FEATURES.maxPayloadBytes!;
    this.features = maxPayloadBytes === PULSAR_FEATURES.maxPayloadBytes ? PULSAR_FEATURES : Object.freeze({ ...PULSAR_FEATURES, maxPayloadBytes });
  }

  async connect(): Promise<void> {
    if (this.#closed) throw new ClosedError('The Pulsar adapter');
    await this.#admin.ping();
  }

  async ensure(request: EnsureRequest): Promise<void> {
    if (this.#closed) throw new ClosedError('The Pulsar adapter');
    await this.#admin.createTopic(request.topic);
    if (request.group !== undefined) await this.#admin.createSubscription(request.topic, request.group);
  }

  /**
   * What {@link PulsarAdapter.ensure} would create, read through the admin REST API (one GET of
   * the topic's subscriptions): the persistent topic and, with a group, its durable subscription.
   * Changes nothing.
   */
  async plan(request: EnsureRequest): Promise<TopologyChange[]> {
    if (this.#closed) throw new ClosedError('The Pulsar adapter');
    const topic = persistentTopic(this.#where, request.topic);
    const subscriptions = await this.#admin.subscriptions(request.topic);
    const changes: TopologyChange[] = [{ action: subscriptions ? 'unchanged' : 'create', resource: `topic ${topic}` }];
    if (request.group !== undefined) {
      changes.push({ action: subscriptions?.includes(request.group) ? 'unchanged' : 'create', resource: `subscription ${request.group} on ${topic}` });
    }
    return changes;
  }

  /**
   * The durable subscriptions of the topic that are not in `keepGroups`, read through the admin REST
   * API (GET `…/stats`), each with the group's retry topic `<topic>-<group>-RETRY` when it exists.
   * Non-durable subscriptions (readers) are left alone. A subscription with consumers connected is
   * blocked.
   */
  async planPrune(topic: string, keepGroups: readonly string[]): Promise<GroupPrune[]> {
    if (this.#closed) throw new ClosedError('The Pulsar adapter');
    const stats = await this.#admin.topicStats(topic);
    const prunes: GroupPrune[] = [];
    for (const subscription of stats?.subscriptions ?? []) {
      if (!subscription.durable || keepGroups.includes(subscription.name)) continue;
      const changes: TopologyChange[] = [
        { action: 'delete', resource: `subscription ${subscription.name} on ${persistentTopic(this.#where, topic)}`, ...(subscription.backlog > 0 ? { detail: `${subscription.backlog} messages not yet acknowledged` } : {}) },
      ];
      const retryTopic = retryTopicName(topic, subscription.name);
      const retry = await this.#admin.topicStats(retryTopic);
      if (retry) changes.push({ action: 'delete', resource: `topic ${persistentTopic(this.#where, retryTopic)} (retry topic of subscription ${subscription.name})` });
      const busy = subscription.consumers + (retry?.subscriptions.reduce((sum, sub) => sum + sub.consumers, 0) ?? 0);
      prunes.push({ topic, group: subscription.name, changes, ...(busy > 0 ? { blockedBy: `${busy} consumer(s) connected` } : {}) });
    }
    return prunes;
  }

  /**
   * Deletes subscription `target.group` (unforced: Pulsar refuses while consumers are connected,
   * which rejects with `GroupInUseError`), then its retry topic when `target` lists it.
   */
  async prune(target: GroupPrune): Promise<void> {
    if (this.#closed) throw new ClosedError('The Pulsar adapter');
    await this.#admin.deleteSubscription(target.topic, target.group);
    const retryTopic = retryTopicName(target.topic, target.group);
    if (target.changes.some((change) => change.resource.startsWith(`topic ${persistentTopic(this.#where, retryTopic)} `))) await this.#admin.deleteTopic(retryTopic);
  }

  async send(message: WireMessage): Promise<void> {
    if (this.#closed) throw new ClosedError('The Pulsar adapter');
    const limit = this.features.maxPayloadBytes!;
    if (message.payload.byteLength > limit) throw new PayloadTooLargeError(message.payload.byteLength, limit, 'Pulsar (WebSocket API)');
    const frame: { -readonly [K in keyof ProducerFrame]: ProducerFrame[K] } = { payload: Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength).toString('base64'), properties: message.headers };
    if (message.key !== undefined) frame.key = message.key;
    if (message.delayMs > 0) frame.deliverAfterMs = Math.ceil(message.delayMs);
    await this.#producer(message.topic).send(frame);
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    if (this.#closed) throw new ClosedError('The Pulsar adapter');
    if (request.ensure) await this.ensure(request);
    const retryTopic = retryTopicName(request.topic, request.group);
    const topics = [persistentTopic(this.#where, request.topic), persistentTopic(this.#where, retryTopic)].join(',');
    const query = new URLSearchParams({
      topics,
      subscriptionType: request.ordered ? 'Key_Shared' : 'Shared',
      receiverQueueSize: String(Math.min(1000, Math.max(1, request.prefetch))),
      negativeAckRedeliveryDelay: String(this.#nackDelayMs),
    });
    const consumption = new PulsarConsumption(
      {
        url: `${this.#wsUrl}/ws/v3/consumer/${encodeURIComponent(request.group)}?${query}`,
        prefetch: request.prefetch,
        nackDelayMs: this.#nackDelayMs,
        connectTimeoutMs: this.#sendTimeoutMs,
        maxReconnectDelayMs: this.#maxReconnectDelayMs,
        republish: (message, headers, delayMs) => this.#republish(retryTopic, message, headers, delayMs),
        onClosed: () => this.#consumptions.delete(consumption),
      },
      onDelivery,
    );
    await consumption.start();
    this.#consumptions.add(consumption);
    return consumption;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#producers.values()].map((producer) => producer.close()));
    this.#closed = true;
    await Promise.allSettled([...this.#consumptions].map((consumption) => consumption.close()));
    this.#consumptions.clear();
    this.#producers.clear();
  }

  async #republish(retryTopic: string, message: PulsarConsumerMessage, headers: Record<string, string>, delayMs: number): Promise<void> {
    const frame: { -readonly [K in keyof ProducerFrame]: ProducerFrame[K] } = { payload: message.payload, properties: headers, deliverAfterMs: Math.ceil(delayMs) };
    if (message.key !== undefined) frame.key = message.key;
    await this.#producer(retryTopic).send(frame);
  }

  #producer(topic: string): PulsarProducer {
    let producer = this.#producers.get(topic);
    if (!producer) {
      producer = new PulsarProducer({
        url: `${this.#wsUrl}/ws/v2/producer/${topicPath(this.#where, topic)}?batchingEnabled=false`,
        sendTimeoutMs: this.#sendTimeoutMs,
        maxReconnectDelayMs: this.#maxReconnectDelayMs,
      });
      this.#producers.set(topic, producer);
    }
    return producer;
  }
}
