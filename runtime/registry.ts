import type { Adapter } from './contract.js';
import { AdapterNotFoundError } from './errors.js';
import { Broker, type BrokerOptions } from './Broker.js';

/**
 * Adapter configuration types by adapter name. Each adapter module adds its own entry:
 *
 * ```ts
 * declare module 'omniqueue' { interface AdapterConfigs { memory: MemoryAdapterOptions } }
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface AdapterConfigs {}

/** Builds an adapter from its configuration. */
export type AdapterFactory<C> = (config: C) => Adapter;

const factories = new Map<string, AdapterFactory<never>>();

/** Registers an adapter under `name`. Adapter modules call this when their subpath is imported. */
export function register<N extends string>(name: N, factory: AdapterFactory<N extends keyof AdapterConfigs ? AdapterConfigs[N] : Record<string, unknown>>): void {
  factories.set(name, factory as AdapterFactory<never>);
}

/** Names of the registered adapters. */
export function registeredAdapters(): string[] {
  return [...factories.keys()];
}

/** Configuration accepted by {@link create}: the adapter's own settings plus the broker's pipeline options. */
export type CreateConfig<N extends string> = (N extends keyof AdapterConfigs ? AdapterConfigs[N] : Record<string, unknown>) & BrokerOptions;

/** Builds the registered adapter `name` alone, without a broker around it (provisioning, tools). */
export function createAdapter<N extends string>(name: N, config?: CreateConfig<N>): Adapter {
  const factory = factories.get(name);
  if (!factory) throw new AdapterNotFoundError(name, registeredAdapters());
  return (factory as AdapterFactory<CreateConfig<N>>)((config ?? {}) as CreateConfig<N>);
}

/**
 * Creates a broker on the registered adapter `name` (the book's `create(name, config)`). The
 * adapter's module must have been imported first. Call `init()` on the result before use.
 */
export async function create<N extends string>(name: N, config?: CreateConfig<N>): Promise<Broker> {
  const settings = (config ?? {}) as CreateConfig<N>;
  return new Broker(createAdapter(name, settings), settings);
}
