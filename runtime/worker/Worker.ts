import type { Broker } from '../Broker.js';
import { ConfigError } from '../errors.js';
import '../index.js';
import type { Logger } from '../Logger.js';
import { create, registeredAdapters, type CreateConfig } from '../registry.js';
import type { Subscription } from '../Subscription.js';
import { GroupRuntime, loadHandler, subscribeOptionsOf, type LoadedTopology, type ResolvedGroup } from '../topology.js';
import { createLogger } from './createLogger.js';
import { PrometheusMetricsSink } from './PrometheusMetricsSink.js';
import { ProbeServer } from './ProbeServer.js';

/** Settings of a {@link Worker}. */
export interface WorkerOptions {
  /** The loaded topology (see `loadTopology`). */
  readonly topology: LoadedTopology;
  /**
   * Run only these groups: a group name (`billing`, every topic's group of that name) or
   * `topic/group`. Naming a group explicitly also runs it when its `runtime` is not `worker`.
   * Default: every group whose runtime is `worker`.
   */
  readonly groups?: readonly string[];
  /**
   * Use this broker instead of creating one from `topology.adapter`. The worker then neither
   * initialises nor closes it beyond its own subscriptions, and its metrics reach `/metrics` only
   * when the broker was created with `metrics: [sink]` and the same sink is passed as `metrics`.
   */
  readonly broker?: Broker;
  /** HTTP port of `/healthz`, `/readyz` and `/metrics`; 0 picks a free port, `false` serves nothing. Default 8080. */
  readonly port?: number | false;
  /** HTTP bind address. Default `0.0.0.0` (reachable by the container's probes). */
  readonly host?: string;
  /** How long shutdown waits for messages in flight before handing them back to the broker. Default 30 s. */
  readonly drainTimeoutMs?: number;
  /** Structured logger. Default: pino, JSON lines on stdout, level from `LOG_LEVEL` (default `info`). */
  readonly logger?: Logger;
  /** Prometheus sink. Default: a new one with its own registry. */
  readonly metrics?: PrometheusMetricsSink;
  /** Stop gracefully on SIGTERM / SIGINT (a second signal exits at once with code 1). Default false. */
  readonly handleSignals?: boolean;
}

/** Lifecycle of a {@link Worker}. */
export const WorkerState = {
  New: 'new',
  Starting: 'starting',
  Running: 'running',
  Stopping: 'stopping',
  Stopped: 'stopped',
} as const;

/** Union of {@link WorkerState} values. */
export type WorkerState = (typeof WorkerState)[keyof typeof WorkerState];

/** Default port of the worker's HTTP endpoints. */
export const DEFAULT_WORKER_PORT = 8080;
/** Default drain timeout on shutdown. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/**
 * The container worker: runs the topology's groups as long-running subscriptions, serves health,
 * readiness and Prometheus metrics over HTTP, logs JSON lines, and shuts down gracefully — it stops
 * pulling, lets the messages in flight finish and settle (within the drain timeout), then closes.
 */
export class Worker {
  readonly #options: WorkerOptions;
  readonly #logger: Logger;
  readonly #drainTimeoutMs: number;
  readonly #subscriptions: Subscription[] = [];
  readonly #ownsBroker: boolean;
  readonly #probes: ProbeServer | undefined;
  readonly #stopped: Promise<void>;
  #resolveStopped!: () => void;
  #broker: Broker | undefined;
  #state: WorkerState = WorkerState.New;
  #stopping: Promise<void> | undefined;
  #signals = 0;
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    this.#signals++;
    if (this.#signals > 1) {
      this.#logger.error({ signal }, 'second signal: exiting now without finishing the messages in flight (they will be redelivered)');
      process.exit(1);
    }
    void this.stop(signal).catch((error: unknown) => this.#logger.error({ err: errorText(error) }, 'shutdown failed'));
  };

  /** The Prometheus sink behind `/metrics`. */
  readonly metrics: PrometheusMetricsSink;

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.#logger = options.logger ?? createLogger();
    this.#drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    if (!(this.#drainTimeoutMs >= 0)) throw new ConfigError(`drainTimeoutMs must be a number ≥ 0, got ${this.#drainTimeoutMs}.`);
    this.metrics = options.metrics ?? new PrometheusMetricsSink();
    this.#broker = options.broker;
    this.#ownsBroker = options.broker === undefined;
    this.#probes = options.port === false ? undefined : new ProbeServer({ registry: this.metrics.registry, notReadyReason: () => this.#notReadyReason() });
    this.#stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
  }

  /** Where the worker is in its lifecycle. */
  get state(): WorkerState {
    return this.#state;
  }

  /** The bound HTTP port, once started (undefined when HTTP is off). */
  get port(): number | undefined {
    return this.#probes?.port;
  }

  /** The broker, once started. */
  get broker(): Broker {
    if (!this.#broker) throw new ConfigError('The worker has no broker yet: call start() first.');
    return this.#broker;
  }

  /** The running subscriptions. */
  get subscriptions(): readonly Subscription[] {
    return this.#subscriptions;
  }

  /** Resolves once the worker has stopped. */
  get stopped(): Promise<void> {
    return this.#stopped;
  }

  /** The groups this worker runs, after the `groups` filter and the `runtime` setting. */
  selectedGroups(): ResolvedGroup[] {
    return selectGroups(this.#options.topology, this.#options.groups);
  }

  /**
   * Starts: HTTP endpoints first (so `/healthz` answers during start-up), then the broker, one
   * subscription per group (topics and groups created when missing), then the topology's
   * `onReady` hook. Resolves when every group is consuming.
   */
  async start(): Promise<void> {
    if (this.#state !== WorkerState.New) throw new ConfigError(`Worker.start() called in state '${this.#state}'; a worker starts once.`);
    this.#state = WorkerState.Starting;
    const { topology } = this.#options;
    try {
      const groups = this.selectedGroups();
      const handlers = await Promise.all(groups.map((group) => loadHandler(group)));
      if (this.#options.handleSignals) {
        process.on('SIGTERM', this.#onSignal);
        process.on('SIGINT', this.#onSignal);
      }
      if (this.#probes) {
        const port = await this.#probes.listen(this.#options.port || (this.#options.port === 0 ? 0 : DEFAULT_WORKER_PORT), this.#options.host ?? '0.0.0.0');
        this.#logger.info({ port, endpoints: ['/healthz', '/readyz', '/metrics'] }, `http listening on port ${port}`);
      }
      if (!this.#broker) {
        const { name, ...settings } = topology.adapter;
        await ensureAdapterRegistered(name);
        this.#broker = await create(name, { ...settings, logger: this.#logger, metrics: [this.metrics] } as CreateConfig<string>);
      }
      await this.#broker.init();
      for (const [index, group] of groups.entries()) {
        const loaded = handlers[index]!;
        this.metrics.declareGroup(group.topic, group.group);
        const options = subscribeOptionsOf(group, loaded.schema);
        this.#subscriptions.push(await this.#broker.subscribe(group.topic, loaded.handler, group.group, options));
        this.#logger.info(
          { topic: group.topic, group: group.group, concurrency: options.concurrency ?? 16, schema: loaded.schema !== undefined, handler: loaded.path },
          `subscribed ${group.topic}/${group.group}`,
        );
      }
      if (this.#state !== WorkerState.Starting) return;
      if (topology.config.onReady) await topology.config.onReady(this.#broker);
      if (this.#state !== WorkerState.Starting) return;
      this.#state = WorkerState.Running;
      this.#logger.info(
        { adapter: this.#broker.adapter.name, groups: groups.map((group) => `${group.topic}/${group.group}`), port: this.port },
        'worker ready',
      );
    } catch (error) {
      if (this.#stopping) {
        // A signal arrived while starting: the shutdown it began is the outcome, not a failure.
        await this.#stopping;
        return;
      }
      this.#logger.error({ err: errorText(error) }, 'worker failed to start');
      await this.stop('start-failed').catch(() => undefined);
      throw error;
    }
  }

  /**
   * Graceful shutdown: not ready any more, stop pulling, wait up to the drain timeout for the
   * messages in flight to finish and settle (whatever is still unsettled then goes back to the
   * broker), close the broker (when the worker created it) and the HTTP endpoints. Idempotent.
   */
  stop(reason = 'stop()'): Promise<void> {
    this.#stopping ??= this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: string): Promise<void> {
    const started = Date.now();
    this.#state = WorkerState.Stopping;
    const inFlight = this.#subscriptions.reduce((sum, subscription) => sum + subscription.inFlight, 0);
    this.#logger.info({ reason, inFlight, drainTimeoutMs: this.#drainTimeoutMs }, 'shutting down: no new messages, finishing the messages in flight');
    try {
      await Promise.allSettled(this.#subscriptions.map((subscription) => subscription.close({ drainTimeoutMs: this.#drainTimeoutMs })));
      const abandoned = this.#subscriptions.reduce((sum, subscription) => sum + subscription.inFlight, 0);
      if (abandoned > 0) {
        this.#logger.warn({ abandoned, drainTimeoutMs: this.#drainTimeoutMs }, 'drain timeout reached: unfinished messages were handed back to the broker for redelivery');
      }
      if (this.#ownsBroker && this.#broker) await this.#broker.close({ drainTimeoutMs: this.#drainTimeoutMs });
      await this.#probes?.close();
      this.#logger.info({ reason, finished: inFlight, tookMs: Date.now() - started }, 'worker stopped');
    } finally {
      process.off('SIGTERM', this.#onSignal);
      process.off('SIGINT', this.#onSignal);
      this.#state = WorkerState.Stopped;
      this.#resolveStopped();
    }
  }

  #notReadyReason(): string | undefined {
    switch (this.#state) {
      case WorkerState.Running:
        return undefined;
      case WorkerState.New:
      case WorkerState.Starting:
        return 'starting (broker not initialised or groups not subscribed yet)';
      default:
        return 'shutting down';
    }
  }
}

/**
 * Picks the groups a worker runs: every `worker`-runtime group, or those named by `filters`
 * (`group` or `topic/group`). Throws a {@link ConfigError} when a filter matches nothing or when
 * nothing is left to run.
 */
export function selectGroups(topology: LoadedTopology, filters?: readonly string[]): ResolvedGroup[] {
  const all = topology.groups;
  const available = all.map((group) => `${group.topic}/${group.group}`).join(', ');
  if (filters && filters.length > 0) {
    const selected = new Set<ResolvedGroup>();
    for (const filter of filters) {
      const matches = all.filter((group) => group.group === filter || `${group.topic}/${group.group}` === filter);
      if (matches.length === 0) throw new ConfigError(`--group ${filter}: no such group in the topology (groups: ${available}).`);
      for (const match of matches) selected.add(match);
    }
    return all.filter((group) => selected.has(group));
  }
  const selected = all.filter((group) => group.runtime === GroupRuntime.Worker);
  if (selected.length === 0) {
    throw new ConfigError(`No group of the topology runs on the worker: every group sets runtime to lambda or azure (groups: ${available}). Name one with --group to run it here anyway.`);
  }
  return selected;
}

/**
 * Makes sure the adapter `name` is registered: the memory adapter always is; others are imported
 * from `adapters/<name>` of this package when not registered yet.
 */
export async function ensureAdapterRegistered(name: string): Promise<void> {
  if (registeredAdapters().includes(name)) return;
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) return;
  try {
    // A computed specifier (not a template literal) so bundlers and vitest leave the import to Node.
    const specifier = new URL(`../../adapters/${name}/index.js`, import.meta.url).href;
    await import(/* @vite-ignore */ specifier);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const missingItself = (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((error as Error).message).includes(`adapters/${name}/index`);
    // Not one of ours: `create` reports the adapter as not registered, with the registered names.
    if (!missingItself) throw error;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
