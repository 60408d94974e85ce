import { ConnectionError, PublishError } from '../../runtime/errors.js';
import { topicPath, type PulsarNamespace } from './topicNames.js';

/**
 * The few calls of Pulsar's admin REST API (v2) the adapter needs, over Node's built-in `fetch`:
 * a health check and idempotent creation of topics and subscriptions.
 */
export class PulsarAdmin {
  readonly #base: string;
  readonly #where: PulsarNamespace;
  readonly #timeoutMs: number;

  constructor(httpUrl: string, where: PulsarNamespace, timeoutMs: number) {
    this.#base = `${httpUrl.replace(/\/+$/, '')}/admin/v2`;
    this.#where = where;
    this.#timeoutMs = timeoutMs;
  }

  /** Resolves when the admin API answers (GET /admin/v2/clusters). */
  async ping(): Promise<void> {
    await this.#call('GET', '/clusters', [200]);
  }

  /** Creates a non-partitioned persistent topic; an existing one is left as it is. */
  async createTopic(topic: string): Promise<void> {
    await this.#call('PUT', `/${topicPath(this.#where, topic)}`, [204, 409]);
  }

  /**
   * Creates a durable subscription positioned at the end of the topic, so that it receives every
   * message published from now on, whether or not a consumer is connected. Idempotent.
   */
  async createSubscription(topic: string, subscription: string): Promise<void> {
    await this.#call('PUT', `/${topicPath(this.#where, topic)}/subscription/${encodeURIComponent(subscription)}`, [204, 409]);
  }

  async #call(method: string, path: string, ok: readonly number[]): Promise<void> {
    let response: Response;
    try {
      response = await fetch(this.#base + path, { method, signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (error) {
      throw new ConnectionError(`Pulsar admin API at ${this.#base} did not answer ${method} ${path}: ${(error as Error).message}`, { cause: error });
    }
    if (ok.includes(response.status)) {
      await response.body?.cancel();
      return;
    }
    const text = await response.text().catch(() => '');
    const message = `Pulsar admin API ${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`;
    throw response.status >= 500 ? new ConnectionError(message) : new PublishError(message);
  }
}
