import { ConnectionError, GroupInUseError, PublishError } from '../../runtime/errors.js';
import { topicPath, type PulsarNamespace } from './topicNames.js';

/**
 * The few calls of Pulsar's admin REST API (v2) the adapter needs, over Node's built-in `fetch`:
 * a health check, idempotent creation of topics and subscriptions, the read-only look-ups of a
 * topic's subscriptions that `plan` and `planPrune` use, and the unforced deletes `prune` uses.
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
    const names = await this.#getJson(path);
    if (names === undefined) return undefined;
    if (!Array.isArray(names)) throw new ConnectionError(`Pulsar admin API GET ${path} answered ${JSON.stringify(names).slice(0, 200)}, not a list.`);
    return names.map(String);
  }

  /**
   * The subscriptions of a topic with their durability and connected consumers (GET `…/stats`), and
   * the topic's connected producers; `undefined` when the topic does not exist. Reads only.
   */
  async topicStats(topic: string): Promise<TopicStats | undefined> {
    const stats = (await this.#getJson(`/${topicPath(this.#where, topic)}/stats`)) as
      | { subscriptions?: Record<string, { isDurable?: boolean; consumers?: unknown[]; msgBacklog?: number }>; publishers?: unknown[] }
      | undefined;
    if (stats === undefined) return undefined;
    return {
      producers: stats.publishers?.length ?? 0,
      subscriptions: Object.entries(stats.subscriptions ?? {}).map(([name, sub]) => ({ name, durable: sub.isDurable !== false, consumers: sub.consumers?.length ?? 0, backlog: sub.msgBacklog ?? 0 })),
    };
  }

  /** Deletes a subscription that has no consumers connected; a missing one counts as deleted. Rejects with `GroupInUseError` (412) otherwise. */
  async deleteSubscription(topic: string, subscription: string): Promise<void> {
    await this.#delete(`/${topicPath(this.#where, topic)}/subscription/${encodeURIComponent(subscription)}`, `subscription '${subscription}' of topic '${topic}'`);
  }

  /** Deletes a topic that has no producers or consumers connected (not forced); a missing one counts as deleted. */
  async deleteTopic(topic: string): Promise<void> {
    await this.#delete(`/${topicPath(this.#where, topic)}`, `topic '${topic}'`);
  }

  /** GET `path` as JSON; `undefined` when the resource does not exist (404). */
  async #getJson(path: string): Promise<unknown> {
    const response = await this.#request('GET', path);
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    if (response.status !== 200) throw await this.#failure('GET', path, response);
    return response.json().catch((error: unknown) => {
      throw new ConnectionError(`Pulsar admin API GET ${path} answered with invalid JSON: ${(error as Error).message}`, { cause: error });
    });
  }

  async #delete(path: string, what: string): Promise<void> {
    const response = await this.#request('DELETE', path);
    if (response.status === 204 || response.status === 200 || response.status === 404) {
      await response.body?.cancel();
      return;
    }
    if (response.status === 412) {
      const text = await response.text().catch(() => '');
      throw new GroupInUseError(`Pulsar refused to delete ${what}: ${text.slice(0, 300) || 'it has consumers or producers connected'}`);
    }
    throw await this.#failure('DELETE', path, response);
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

/** What {@link PulsarAdmin.topicStats} reads of a topic. */
export interface TopicStats {
  /** Producers connected to the topic. */
  readonly producers: number;
  /** Each subscription: name, durability, consumers connected, messages not yet acknowledged. */
  readonly subscriptions: readonly { readonly name: string; readonly durable: boolean; readonly consumers: number; readonly backlog: number }[];
}
