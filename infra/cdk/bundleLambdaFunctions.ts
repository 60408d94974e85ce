/**
 * Builds the function bundle of every Lambda group with the project's own esbuild settings
 * (`buildFunctions` of `esbuild.config.mjs`: one minified ESM bundle per group, the handler module
 * wrapped by `sqsHandler`) and stages each as `<outdir>/<topic>.<group>/index.mjs`, ready for
 * `lambda.Code.fromAsset`. No Docker, no network.
 *
 * @packageDocumentation
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError } from '../../runtime/errors.js';
import { GroupRuntime, type LoadedTopology } from '../../runtime/topology.js';
import { checkOverrides, effectiveRuntime, groupKey, type RuntimeOverrides } from '../groups.js';

/** Options of {@link bundleLambdaFunctions}. */
export interface BundleLambdaFunctionsOptions {
  /** Where the staged bundles go. Default: a new temporary directory. */
  readonly outdir?: string;
  /** The same runtime overrides given to `OmniQueueTopology` (keyed `topic/group`). */
  readonly runtimes?: RuntimeOverrides;
  /** Path of the esbuild configuration that exports `buildFunctions`. Default: the project's `esbuild.config.mjs`. */
  readonly esbuildConfig?: string;
}

/** One bundle `buildFunctions` wrote. */
interface BuiltFunction {
  readonly name: string;
  readonly outfile: string;
  readonly bytes: number;
}

/** The shape of `esbuild.config.mjs`. */
interface EsbuildConfigModule {
  buildFunctions(options: { configPath: string; outdir: string; all?: boolean }): Promise<BuiltFunction[]>;
}

/**
 * Bundles every group that runs on Lambda (after `runtimes` overrides) and returns, keyed
 * `topic/group`, the directory holding its `index.mjs` — pass it as `code` to `OmniQueueTopology`.
 * The topology must come from a file (`loadTopology`), since the bundler imports the handlers from it.
 */
export async function bundleLambdaFunctions(topology: LoadedTopology, options: BundleLambdaFunctionsOptions = {}): Promise<Record<string, string>> {
  checkOverrides(topology, options.runtimes);
  const groups = topology.groups.filter((group) => effectiveRuntime(group, options.runtimes) === GroupRuntime.Lambda);
  if (groups.length === 0) return {};
  if (!topology.path) throw new ConfigError('bundleLambdaFunctions: the topology has no file path; load it with loadTopology(path).');
  const configFile = options.esbuildConfig ? resolve(options.esbuildConfig) : findEsbuildConfig();
  const module = (await import(pathToFileURL(configFile).href)) as Partial<EsbuildConfigModule>;
  if (typeof module.buildFunctions !== 'function') throw new ConfigError(`bundleLambdaFunctions: ${configFile} does not export buildFunctions.`);

  const outdir = resolve(options.outdir ?? mkdtempSync(join(tmpdir(), 'omniqueue-functions-')));
  const staging = join(outdir, '.build');
  // `buildFunctions` picks the groups whose topology runtime is lambda; an override needs every group built.
  const all = groups.some((group) => group.runtime !== GroupRuntime.Lambda);
  const built = await module.buildFunctions({ configPath: topology.path, outdir: staging, all });
  const code: Record<string, string> = {};
  for (const [index, group] of groups.entries()) {
    const name = `${group.topic}.${group.group}`;
    const bundle = built.find((entry) => entry.name === name);
    if (!bundle) throw new ConfigError(`bundleLambdaFunctions: buildFunctions did not build ${name}.`);
    // Lambda splits the handler string at the first dot, so each bundle gets its own directory and
    // index.mjs; the directory name has no dot either (CDK would take the rest for an extension).
    const directory = join(outdir, `${index + 1}-${name.replace(/\./g, '_')}`);
    rmSync(directory, { recursive: true, force: true });
    mkdirSync(directory, { recursive: true });
    copyFileSync(bundle.outfile, join(directory, 'index.mjs'));
    code[groupKey(group.topic, group.group)] = directory;
  }
  rmSync(staging, { recursive: true, force: true });
  return code;
}

/** The project's `esbuild.config.mjs`, found by walking up from this module. */
function findEsbuildConfig(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6; depth++) {
    const candidate = join(directory, 'esbuild.config.mjs');
    if (existsSync(candidate)) return candidate;
    directory = dirname(directory);
  }
  throw new ConfigError('bundleLambdaFunctions: esbuild.config.mjs not found; pass esbuildConfig, or build the bundles yourself and pass lambda.Code objects as `code`.');
}
