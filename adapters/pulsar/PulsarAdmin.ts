import { ConnectionError, PublishError } from '../../runtime/errors.js';
import { topicPath, type PulsarNamespace } from './topicNames.js';

/**
 * The few calls of Pulsar's admin REST API (v2) the adapter needs, over Node's built-in `fetch`:
 * a health check, idempotent creation of topics and subscriptions, and the read-only look-up of a
 * topic's subscriptions that `plan` uses.
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

  /**
   * The subscriptions of a topic (GET `…/subscriptions`), or `undefined` when the topic does not
   * exist. Reads only: the admin API does not create topics on reads.
   */
  async subscriptions(topic: string): Promise<readonly string[] | undefined> {
    const path = `/${topicPath(this.#where, topic)}/subscriptions`;
    const response = await this.#request('GET', path);
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    if (response.status !== 200) throw await this.#failure('GET', path, response);
    const names: unknown = await response.json().catch((error: unknown) => {
      throw new ConnectionError(`Pulsar admin API GET ${path} answered with invalid JSON: ${(error as Error).message}`, { cause: error });
    });
    if (!Array.isArray(names)) throw new ConnectionError(`Pulsar admin API GET ${path} answered ${JSON.stringify(names).slice(0, 200)}, not a list.`);
    return names.map(String);
  }

  async #call(method: string, path: string, ok: readonly number[]): Promise<void> {
    const response = await this.#request(method, path);
    if (ok.includes(response.status)) {
      await response.body?.cancel();
      return;
    }
    throw await this.#failure(method, path, response);
  }

  async #request(method: string, path: string): Promise<Response> {
    try {
      return await fetch(this.#base + path, { method, signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (error) {
      throw new ConnectionError(`Pulsar admin API at ${this.#base} did not answer ${method} ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  async #failure(method: string, path: string, response: Response): Promise<ConnectionError | PublishError> {
    const text = await response.text().catch(() => '');
    const message = `Pulsar admin API ${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`;
    return response.status >= 500 ? new ConnectionError(message) : new PublishError(message);
  }
}
