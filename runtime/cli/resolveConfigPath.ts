import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { DEFAULT_CONFIG_FILES, findTopologyFile } from '../topology.js';

/**
 * The topology file a command uses: `--config` when given, else the first of
 * `omniqueue.config.{ts,mts,js,mjs}` in the working directory. Throws a {@link ConfigError} when
 * there is none.
 */
export function resolveConfigPath(config: string, configGiven: boolean, cwd: string = process.cwd()): string {
  if (configGiven) return resolve(cwd, config);
  const found = findTopologyFile(cwd);
  if (!found) {
    throw new ConfigError(`No topology file found: looked for ${DEFAULT_CONFIG_FILES.join(', ')} in ${cwd}. Pass --config <file>.`);
  }
  return found;
}
