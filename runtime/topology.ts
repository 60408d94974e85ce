/**
 * The topology file (`omniqueue.config.ts`): which broker, which topics, which groups, and which
 * handler module each group runs. One file feeds the container worker (`omniqueue worker`), the
 * Lambda and Azure entry points and the infrastructure generators.
 *
 * ```ts
 * import { defineTopology } from 'omniqueue';
 *
 * export default defineTopology({
 *   adapter: { name: 'rabbitmq', url: process.env.AMQP_URL },      // memory when absent
 *   topics: {
 *     orders: {
 *       groups: {
 *         billing: { handler: './handlers/billing.ts', retry: { maxAttempts: 5 }, concurrency: 8 },
 *         inventory: { handler: './handlers/inventory.ts' },
 *       },
 *     },
 *   },
 * });
 * ```
 *
 * @packageDocumentation
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Broker, SubscribeOptions } from './Broker.js';
import { ConfigError, OmniQueueError } from './errors.js';
import type { Handler } from './message.js';
import type { AdapterConfigs } from './registry.js';
import { resolveRetryPolicy, type RetryPolicy } from './pipeline/retry.js';
import { validateName } from './validateName.js';

/** Where a group's handler runs. */
export const GroupRuntime = {
  /** The long-running container worker (`omniqueue worker`). The default. */
  Worker: 'worker',
  /** An AWS Lambda function fed by an SQS event source mapping. */
  Lambda: 'lambda',
  /** An Azure Functions Service Bus trigger. */
  Azure: 'azure',
} as const;

/** Union of {@link GroupRuntime} values. */
export type GroupRuntime = (typeof GroupRuntime)[keyof typeof GroupRuntime];

/** An adapter whose module declared its settings in {@link AdapterConfigs}: `name` plus its settings. */
export type KnownAdapterSettings = {
  [N in keyof AdapterConfigs & string]: { readonly name: N } & AdapterConfigs[N];
}[keyof AdapterConfigs & string];

/** Any adapter: its registry name plus the settings its factory takes. */
export interface GenericAdapterSettings {
  /** Registry name (`memory`, `rabbitmq`, `kafka` …). */
  readonly name: string;
  /** Adapter settings, passed to the adapter's factory as they are. */
  readonly [setting: string]: unknown;
}

/** The `adapter` entry: registry name plus settings. */
export type AdapterSettings = KnownAdapterSettings | GenericAdapterSettings;

/** One consumer group of a topic and the handler module it runs. */
export interface GroupConfig {
  /**
   * Path of the handler module, relative to the topology file. The module exports the handler as
   * `default` and may export a Standard Schema (zod, valibot, arktype …) as `schema`.
   */
  readonly handler: string;
  /** Retry policy; the runtime defaults (5 attempts, 200 ms doubling, 60 s cap) fill what is left out. */
  readonly retry?: Partial<RetryPolicy>;
  /** Most messages handled at once by one worker for this group. Default 16. */
  readonly concurrency?: number;
  /** Dead-letter destination. Default topic `<topic>.<group>.dlq`. */
  readonly deadLetter?: { readonly topic?: string };
  /** `key`: same-key messages are handled one at a time, in order. Default `none`. */
  readonly ordering?: 'none' | 'key';
  /** What to do with a JSON payload that is not valid JSON. Default `dead-letter`. */
  readonly invalidJson?: 'dead-letter' | 'deliver-raw';
  /** Where this group's handler runs. Default `worker`. */
  readonly runtime?: GroupRuntime;
  /** Broker-specific creation options for the group (merged over the topic's). */
  readonly createOptions?: Readonly<Record<string, unknown>>;
}

/** One topic and its groups. */
export interface TopicConfig {
  /** Consumer groups of the topic: every group gets every message. */
  readonly groups: Readonly<Record<string, GroupConfig>>;
  /** Broker-specific creation options of the topic (partitions, retention …). */
  readonly createOptions?: Readonly<Record<string, unknown>>;
}

/** The whole topology file. */
export interface TopologyConfig {
  /** The broker adapter and its settings. Default: the in-process `memory` adapter. */
  readonly adapter?: AdapterSettings;
  /** Topics by name. */
  readonly topics: Readonly<Record<string, TopicConfig>>;
  /**
   * Seed / bootstrap hook: called by the worker once the broker is initialised and every group of
   * the worker is subscribed. Use it to publish seed messages, warm caches or announce readiness.
   * A rejection stops the worker's start.
   */
  readonly onReady?: (broker: Broker) => void | Promise<void>;
}

/** What a handler module exports. */
export interface HandlerModule<T = unknown> {
  /** The handler. */
  readonly default: Handler<T>;
  /** Optional Standard Schema the message body must satisfy; a failing body is dead-lettered. */
  readonly schema?: StandardSchemaV1<unknown, T>;
}

/** One group of a loaded topology, with its handler path made absolute. */
export interface ResolvedGroup {
  /** Topic name. */
  readonly topic: string;
  /** Group name. */
  readonly group: string;
  /** The group's configuration as written. */
  readonly config: GroupConfig;
  /** Absolute path of the handler module. */
  readonly handlerPath: string;
  /** Where the group runs (`worker` when not set). */
  readonly runtime: GroupRuntime;
  /** Topic and group creation options, merged. */
  readonly createOptions: Readonly<Record<string, unknown>> | undefined;
}

/** A validated topology with its groups resolved. */
export interface LoadedTopology {
  /** Absolute path of the topology file (or the base directory given to {@link resolveTopology}). */
  readonly path: string | undefined;
  /** The validated configuration. */
  readonly config: TopologyConfig;
  /** The adapter entry, `{ name: 'memory' }` when the file has none. */
  readonly adapter: AdapterSettings;
  /** Every group of every topic, in file order. */
  readonly groups: readonly ResolvedGroup[];
}

/** A handler module, imported and checked. */
export interface LoadedHandler<T = unknown> {
  /** Absolute path of the module. */
  readonly path: string;
  /** The module's default export. */
  readonly handler: Handler<T>;
  /** The module's `schema` export, if any. */
  readonly schema: StandardSchemaV1<unknown, T> | undefined;
}

/** File names `omniqueue worker` and `omniqueue publish` look for when `--config` is not given. */
export const DEFAULT_CONFIG_FILES = ['omniqueue.config.ts', 'omniqueue.config.mts', 'omniqueue.config.js', 'omniqueue.config.mjs'] as const;

/**
 * Declares the topology. At compile time it only types the object (so editors complete every
 * setting); at run time it validates it and throws a {@link ConfigError} naming the bad path, e.g.
 * `topics.orders.groups.billing.concurrency`.
 */
export function defineTopology<const T extends TopologyConfig>(config: T): T {
  validateTopology(config);
  return config;
}

const TOP_KEYS = ['adapter', 'topics', 'onReady'] as const;
const TOPIC_KEYS = ['groups', 'createOptions'] as const;
const GROUP_KEYS = ['handler', 'retry', 'concurrency', 'deadLetter', 'ordering', 'invalidJson', 'runtime', 'createOptions'] as const;
const RETRY_KEYS = ['maxAttempts', 'initialDelayMs', 'maxDelayMs', 'multiplier', 'jitter'] as const;
const RUNTIMES: readonly string[] = Object.values(GroupRuntime);

/**
 * Checks an untrusted value against the topology shape and the naming rules. Returns it typed, or
 * throws a {@link ConfigError} whose message starts with the path of the first bad setting.
 */
export function validateTopology(value: unknown, source?: string): TopologyConfig {
  const where = source ? ` (in ${source})` : '';
  const fail = (path: string, problem: string): never => {
    throw new ConfigError(`Invalid topology${where}: ${path}: ${problem}`);
  };
  const record = (path: string, v: unknown): Record<string, unknown> => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(path, `must be an object, got ${describeValue(v)}.`);
    return v as Record<string, unknown>;
  };
  const onlyKeys = (path: string, object: Record<string, unknown>, allowed: readonly string[]): void => {
    for (const key of Object.keys(object)) {
      if (!allowed.includes(key)) fail(`${path ? `${path}.` : ''}${key}`, `unknown setting${suggest(key, allowed)}; allowed: ${allowed.join(', ')}.`);
    }
  };
  const createOptions = (path: string, v: unknown): void => {
    if (v !== undefined) record(path, v);
  };

  const top = record('topology', value);
  onlyKeys('', top, TOP_KEYS);
  if (top.adapter !== undefined) {
    const adapter = record('adapter', top.adapter);
    if (typeof adapter.name !== 'string' || adapter.name.length === 0) fail('adapter.name', `must be the adapter's registry name (memory, rabbitmq, kafka …), got ${describeValue(adapter.name)}.`);
  }
  if (top.onReady !== undefined && typeof top.onReady !== 'function') fail('onReady', `must be a function (broker) => void, got ${describeValue(top.onReady)}.`);
  if (top.topics === undefined) fail('topics', 'is required: declare at least one topic with its groups.');
  const topics = record('topics', top.topics);
  if (Object.keys(topics).length === 0) fail('topics', 'declares no topic: add at least one, e.g. topics: { orders: { groups: { billing: { handler: "./handlers/billing.ts" } } } }.');

  for (const [topicName, topicValue] of Object.entries(topics)) {
    const topicPath = `topics.${topicName}`;
    nameOrFail('topic', topicName, topicPath, fail);
    const topic = record(topicPath, topicValue);
    onlyKeys(topicPath, topic, TOPIC_KEYS);
    createOptions(`${topicPath}.createOptions`, topic.createOptions);
    const groups = record(`${topicPath}.groups`, topic.groups);
    if (Object.keys(groups).length === 0) fail(`${topicPath}.groups`, 'declares no group: every consumer belongs to a named group.');
    for (const [groupName, groupValue] of Object.entries(groups)) {
      const path = `${topicPath}.groups.${groupName}`;
      nameOrFail('group', groupName, path, fail);
      const group = record(path, groupValue);
      onlyKeys(path, group, GROUP_KEYS);
      if (typeof group.handler !== 'string' || group.handler.trim() === '') {
        fail(`${path}.handler`, `must be the path of the handler module relative to the topology file (e.g. "./handlers/${groupName}.ts"), got ${describeValue(group.handler)}.`);
      }
      if (group.concurrency !== undefined && (!Number.isInteger(group.concurrency) || (group.concurrency as number) < 1)) {
        fail(`${path}.concurrency`, `must be an integer ≥ 1, got ${describeValue(group.concurrency)}.`);
      }
      if (group.retry !== undefined) {
        const retry = record(`${path}.retry`, group.retry);
        onlyKeys(`${path}.retry`, retry, RETRY_KEYS);
        try {
          resolveRetryPolicy(retry as Partial<RetryPolicy>);
        } catch (error) {
          fail(`${path}.retry`, (error as Error).message);
        }
      }
      if (group.deadLetter !== undefined) {
        const deadLetter = record(`${path}.deadLetter`, group.deadLetter);
        onlyKeys(`${path}.deadLetter`, deadLetter, ['topic']);
        if (deadLetter.topic !== undefined) nameOrFail('topic', deadLetter.topic, `${path}.deadLetter.topic`, fail);
      }
      if (group.ordering !== undefined && group.ordering !== 'none' && group.ordering !== 'key') fail(`${path}.ordering`, `must be 'none' or 'key', got ${describeValue(group.ordering)}.`);
      if (group.invalidJson !== undefined && group.invalidJson !== 'dead-letter' && group.invalidJson !== 'deliver-raw') {
        fail(`${path}.invalidJson`, `must be 'dead-letter' or 'deliver-raw', got ${describeValue(group.invalidJson)}.`);
      }
      if (group.runtime !== undefined && !RUNTIMES.includes(group.runtime as string)) fail(`${path}.runtime`, `must be one of ${RUNTIMES.join(', ')}, got ${describeValue(group.runtime)}.`);
      createOptions(`${path}.createOptions`, group.createOptions);
    }
  }
  return value as TopologyConfig;
}

/**
 * Validates a topology object and resolves its handler paths against `baseDir` (the directory of
 * the topology file). Use {@link loadTopology} to read the file itself.
 */
export function resolveTopology(config: unknown, baseDir: string, source?: string): LoadedTopology {
  const valid = validateTopology(config, source);
  const groups: ResolvedGroup[] = [];
  for (const [topic, topicConfig] of Object.entries(valid.topics)) {
    for (const [group, groupConfig] of Object.entries(topicConfig.groups)) {
      const merged = topicConfig.createOptions || groupConfig.createOptions ? { ...topicConfig.createOptions, ...groupConfig.createOptions } : undefined;
      groups.push({
        topic,
        group,
        config: groupConfig,
        handlerPath: isAbsolute(groupConfig.handler) ? groupConfig.handler : resolve(baseDir, groupConfig.handler),
        runtime: groupConfig.runtime ?? GroupRuntime.Worker,
        createOptions: merged,
      });
    }
  }
  return { path: source, config: valid, adapter: valid.adapter ?? { name: 'memory' }, groups };
}

/**
 * Imports a topology file (`.ts`, `.mts`, `.js`, `.mjs`) on plain Node through tsx, validates its
 * default export and resolves each handler path relative to the file. Handler files are checked to
 * exist; they are imported later by {@link loadHandler}.
 */
export async function loadTopology(path: string): Promise<LoadedTopology> {
  const absolute = resolve(path);
  if (!existsSync(absolute) || !statSync(absolute).isFile()) {
    throw new ConfigError(`Topology file not found: ${absolute}. Pass --config <file> or create omniqueue.config.ts.`);
  }
  const exported = defaultExport(await importModule(absolute, 'topology file'));
  if (exported === undefined) {
    throw new ConfigError(`Topology file ${absolute} has no default export: end it with \`export default defineTopology({ … })\`.`);
  }
  const loaded = resolveTopology(exported, dirname(absolute), absolute);
  for (const group of loaded.groups) {
    if (!findModuleFile(group.handlerPath)) {
      throw new ConfigError(`Invalid topology (in ${absolute}): topics.${group.topic}.groups.${group.group}.handler: file not found: ${group.handlerPath}.`);
    }
  }
  return loaded;
}

/** Finds the topology file in `cwd` among {@link DEFAULT_CONFIG_FILES}. */
export function findTopologyFile(cwd: string = process.cwd()): string | undefined {
  for (const name of DEFAULT_CONFIG_FILES) {
    const candidate = resolve(cwd, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Imports a handler module (a resolved group, or an absolute path) and checks its exports: a
 * function as `default`, and a Standard Schema as `schema` when present.
 */
export async function loadHandler<T = unknown>(target: ResolvedGroup | string): Promise<LoadedHandler<T>> {
  const requested = typeof target === 'string' ? resolve(target) : target.handlerPath;
  const label = typeof target === 'string' ? requested : `topics.${target.topic}.groups.${target.group}.handler (${requested})`;
  const file = findModuleFile(requested);
  if (!file) throw new ConfigError(`Handler module not found: ${label}.`);
  const module = (await importModule(file, `handler module ${label}`)) as Record<string, unknown>;
  const handler = defaultExport(module);
  if (typeof handler !== 'function') {
    throw new ConfigError(`Handler module ${label} must export its handler as default, e.g. \`export default async (msg) => ack()\`; its default export is ${describeValue(handler)}.`);
  }
  const schema = namedExport(module, 'schema');
  if (schema !== undefined && !isStandardSchema(schema)) {
    throw new ConfigError(`Handler module ${label} exports \`schema\`, but it is not a Standard Schema (zod ≥ 3.24, valibot ≥ 1, arktype …).`);
  }
  return { path: file, handler: handler as Handler<T>, schema: schema as StandardSchemaV1<unknown, T> | undefined };
}

/** The `subscribe` options a group's configuration stands for. */
export function subscribeOptionsOf<T>(group: ResolvedGroup, schema?: StandardSchemaV1<unknown, T>): SubscribeOptions<T> {
  const { config } = group;
  return {
    ensure: true,
    createOptions: group.createOptions,
    concurrency: config.concurrency,
    retry: config.retry,
    deadLetter: config.deadLetter,
    ordering: config.ordering,
    invalidJson: config.invalidJson,
    schema,
  };
}

async function importModule(file: string, what: string): Promise<unknown> {
  try {
    const { tsImport } = await import('tsx/esm/api');
    return await tsImport(pathToFileURL(file).href, import.meta.url);
  } catch (error) {
    if (error instanceof OmniQueueError || (error instanceof Error && 'code' in error && error.code === 'CONFIG')) {
      throw new ConfigError(error.message, { cause: error });
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`Could not load ${what}: ${message}`, { cause: error });
  }
}

/** A module's default export, unwrapping the CommonJS interop shape tsx gives `.ts` files outside an ESM package. */
function defaultExport(module: unknown): unknown {
  const value = (module as { default?: unknown } | undefined)?.default;
  if (value !== null && typeof value === 'object' && (value as { __esModule?: unknown }).__esModule === true) {
    return (value as { default?: unknown }).default;
  }
  return value;
}

function namedExport(module: Record<string, unknown>, name: string): unknown {
  if (name in module) return module[name];
  const inner = module.default;
  if (inner !== null && typeof inner === 'object' && (inner as { __esModule?: unknown }).__esModule === true) return (inner as Record<string, unknown>)[name];
  return undefined;
}

function findModuleFile(path: string): string | undefined {
  const candidates = [path];
  if (/\.js$/.test(path)) candidates.push(path.replace(/\.js$/, '.ts'));
  if (/\.mjs$/.test(path)) candidates.push(path.replace(/\.mjs$/, '.mts'));
  if (!/\.[cm]?[jt]s$/.test(path)) candidates.push(`${path}.ts`, `${path}.js`, `${path}.mts`, `${path}.mjs`);
  return candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
}

function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  const standard = (value as { '~standard'?: { validate?: unknown } } | null | undefined)?.['~standard'];
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof standard?.validate === 'function';
}

function nameOrFail(kind: 'topic' | 'group', name: unknown, path: string, fail: (path: string, problem: string) => never): void {
  try {
    validateName(kind, name);
  } catch (error) {
    fail(path, (error as Error).message);
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function suggest(key: string, allowed: readonly string[]): string {
  const lower = key.toLowerCase();
  const close = allowed.find((candidate) => candidate.toLowerCase() === lower || distance(candidate.toLowerCase(), lower) <= 2);
  return close ? ` (did you mean '${close}'?)` : '';
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
