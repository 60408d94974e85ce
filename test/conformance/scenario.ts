/**
 * The `scenario(name, requires, fn)` helper of the conformance suite: feature gating, fresh names,
 * scaled waits and guaranteed broker cleanup for every scenario.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { it } from 'vitest';
import type { AdapterFeatures } from '../../runtime/contract.js';
import type { Broker, BrokerOptions } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { ConformanceTarget } from './ConformanceTarget.js';
import { holdsFor, waitFor, type Describe } from './waitFor.js';

/**
 * A feature a scenario can require. Boolean flags of {@link AdapterFeatures} by name; `delay` means
 * `features.delay !== 'none'` (native or emulated delays).
 */
export type FeatureRequirement =
  | 'consumerGroups'
  | 'persistent'
  | 'retainsWhileOffline'
  | 'orderingPerKey'
  | 'nativeDeadLetter'
  | 'exactlyOnce'
  | 'redeliversUnsettled'
  | 'delay';

/** Does `features` satisfy `requirement`? */
export function hasFeature(features: AdapterFeatures, requirement: FeatureRequirement): boolean {
  return requirement === 'delay' ? features.delay !== 'none' : features[requirement];
}

/** Retry delays every scenario broker uses unless the scenario overrides them. */
export const SCENARIO_RETRY = Object.freeze({ initialDelayMs: 10, maxDelayMs: 50 });

/** What a scenario body gets: its target, scaled waits, fresh names and tracked brokers. */
export interface ScenarioContext {
  /** The target under test. */
  readonly target: ConformanceTarget;
  /** The target's wait multiplier (1 unless the target says otherwise). */
  readonly timeScale: number;
  /**
   * Opens a new, initialised broker on the target with a silent logger and small retry delays
   * (overridable). The scenario closes it when it ends, pass or fail.
   */
  connect(options?: BrokerOptions): Promise<Broker>;
  /** A fresh topic name: `cf_<label>_<time>_<random>`. */
  topic(label: string): string;
  /** A fresh group name. */
  group(label: string): string;
  /** {@link waitFor} with the timeout multiplied by the time scale. */
  waitFor(predicate: () => boolean, timeoutMs: number, what: Describe): Promise<void>;
  /** {@link holdsFor} with the window multiplied by the time scale. */
  holdsFor(predicate: () => boolean, durationMs: number, what: Describe): Promise<void>;
}

/** A scenario body. */
export type ScenarioBody = (context: ScenarioContext) => Promise<void>;

/** Per-scenario settings. */
export interface ScenarioOptions {
  /** Test timeout before scaling, default 30 s. */
  readonly timeoutMs?: number;
}

/** The `scenario` function a suite gets from {@link scenarioFor}. */
export type DefineScenario = (name: string, requires: readonly FeatureRequirement[], body: ScenarioBody, options?: ScenarioOptions) => void;

/**
 * Builds the `scenario(name, requires, body)` helper for one target. A scenario whose requirements
 * the target lacks is registered as skipped with "not applicable: requires …" in its name; the
 * others run `body` and then close every broker the body opened.
 */
export function scenarioFor(target: ConformanceTarget): DefineScenario {
  const timeScale = target.timeScale ?? 1;
  return (name, requires, body, options = {}) => {
    const missing = requires.filter((requirement) => !hasFeature(target.features, requirement));
    if (missing.length > 0) {
      it.skipIf(true)(`${name} — not applicable: requires ${missing.join(', ')}`, () => {});
      return;
    }
    it(name, () => runScenario(target, timeScale, body), (options.timeoutMs ?? 30_000) * timeScale);
  };
}

async function runScenario(target: ConformanceTarget, timeScale: number, body: ScenarioBody): Promise<void> {
  const brokers: Broker[] = [];
  const context: ScenarioContext = {
    target,
    timeScale,
    async connect(options: BrokerOptions = {}) {
      const broker = await target.connect({ logger: silentLogger, ...options, retry: { ...SCENARIO_RETRY, ...options.retry } });
      brokers.push(broker);
      return broker;
    },
    topic: (label) => uniqueName(label),
    group: (label) => uniqueName(label),
    waitFor: (predicate, timeoutMs, what) => waitFor(predicate, timeoutMs * timeScale, what),
    holdsFor: (predicate, durationMs, what) => holdsFor(predicate, durationMs * timeScale, what),
  };
  let failed = false;
  try {
    await body(context);
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    const closed = await Promise.allSettled(brokers.reverse().map((broker) => broker.close({ drainTimeoutMs: 2_000 * timeScale })));
    const rejected = closed.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    // A failing close is a conformance failure of its own, unless the scenario already failed.
    if (rejected && !failed) throw rejected.reason;
  }
}

/** A fresh name that only uses `[A-Za-z0-9._-]`. */
export function uniqueName(label: string): string {
  const clean = label.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  return `cf_${clean}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}
