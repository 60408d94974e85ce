import type { Message as KafkaMessage, Producer, TopicMessages } from 'kafkajs';

interface Pending {
  readonly topic: string;
  readonly message: KafkaMessage;
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Coalesces concurrent publishes into one produce request, the way the Java client's linger does
 * but without adding latency: while one request is on the wire, new messages queue up, and the next
 * request carries all of them (up to `maxRequestBytes`). Every publish still resolves only when the
 * broker acknowledged the request that carried it (acks=all), and rejects with that request's error.
 *
 * This is transport batching, not a retry or a buffer that may lose messages: nothing is reported
 * as sent before the broker answered.
 */
export class ProduceBatcher {
  readonly #queue: Pending[] = [];
  #inFlight: Promise<void> | undefined;
  #scheduled = false;

  constructor(
    private readonly producer: Producer,
    private readonly maxRequestBytes: number,
  ) {}

  /** Messages queued or on the wire. */
  get pending(): number {
    return this.#queue.length + (this.#inFlight ? 1 : 0);
  }

  /** Queues one message; resolves when the broker acknowledged it. */
  send(topic: string, message: KafkaMessage, bytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ topic, message, bytes, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once everything queued so far has been answered by the broker. */
  async drain(): Promise<void> {
    while (this.#inFlight || this.#queue.length > 0 || this.#scheduled) {
      if (this.#inFlight) await this.#inFlight;
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight) return;
    this.#scheduled = true;
    // One microtask of coalescing: publishes started in the same tick share a request.
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#inFlight || this.#queue.length === 0) return;
    let bytes = 0;
    let count = 0;
    while (count < this.#queue.length) {
      const next = this.#queue[count]!;
      if (count > 0 && bytes + next.bytes > this.maxRequestBytes) break;
      bytes += next.bytes;
      count++;
    }
    const batch = this.#queue.splice(0, count);
    const byTopic = new Map<string, KafkaMessage[]>();
    for (const item of batch) {
      let list = byTopic.get(item.topic);
      if (!list) byTopic.set(item.topic, (list = []));
      list.push(item.message);
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    this.#inFlight = this.producer.sendBatch({ topicMessages, acks: -1 }).then(
      () => {
        for (const item of batch) item.resolve();
      },
      (error: unknown) => {
        for (const item of batch) item.reject(error);
      },
    );
    void this.#inFlight.finally(() => {
      this.#inFlight = undefined;
      if (this.#queue.length > 0) this.#flush();
    });
  }
}
