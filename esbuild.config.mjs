/**
 * Function bundles: one minified ESM bundle per topology group that runs on Lambda, built from the
 * group's own handler module wrapped by `sqsHandler` — the same module the worker runs.
 *
 *   npm run build:lambda -- [--config examples/orders/omniqueue.config.ts] [--outdir dist/functions] [--all]
 *
 * `--all` bundles every group (handy to compare sizes). The AWS SDK v3 stays external: the Node.js
 * Lambda runtimes ship it, and `sqsHandler` loads it lazily only to delay or dead-letter a record.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = dirname(fileURLToPath(import.meta.url));

/** esbuild settings shared by every function bundle. */
export const functionBundleOptions = Object.freeze({
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: false,
  legalComments: 'none',
  external: ['@aws-sdk/*'],
  // An ESM bundle that meets a CommonJS dependency needs `require`.
  banner: { js: "import { createRequire as __omniqueueRequire } from 'node:module'; const require = __omniqueueRequire(import.meta.url);" },
  alias: {
    omniqueue: join(root, 'runtime/index.ts'),
    'omniqueue/triggers/lambda': join(root, 'triggers/lambda/index.ts'),
  },
  logLevel: 'warning',
});

/**
 * Builds the bundles; returns one entry per group with its output file and size in bytes.
 * @param {{ configPath: string, outdir: string, all?: boolean }} options
 */
export async function buildFunctions({ configPath, outdir, all = false }) {
  const { loadTopology } = await import('./runtime/topology.ts');
  const topology = await loadTopology(resolve(configPath));
  const groups = topology.groups.filter((group) => all || group.runtime === 'lambda');
  mkdirSync(outdir, { recursive: true });
  const built = [];
  for (const group of groups) {
    const name = `${group.topic}.${group.group}`;
    const outfile = join(outdir, `${name}.mjs`);
    const settings = { topic: group.topic, group: group.group, retry: group.config.retry, concurrency: group.config.concurrency, invalidJson: group.config.invalidJson };
    await build({
      ...functionBundleOptions,
      stdin: {
        contents: [
          `import * as module from ${JSON.stringify(group.handlerPath)};`,
          `import { sqsHandler } from 'omniqueue/triggers/lambda';`,
          `const { default: user, schema } = { schema: undefined, ...module };`,
          `export const handler = sqsHandler(user, { ...${JSON.stringify(settings)}, schema });`,
        ].join('\n'),
        resolveDir: dirname(group.handlerPath),
        sourcefile: `${name}.entry.ts`,
        loader: 'ts',
      },
      outfile,
    });
    built.push({ name, outfile, bytes: statSync(outfile).size });
  }
  return built;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      config: { type: 'string', default: 'examples/orders/omniqueue.config.ts' },
      outdir: { type: 'string', default: 'dist/functions' },
      all: { type: 'boolean', default: false },
    },
  });
  const built = await buildFunctions({ configPath: values.config, outdir: values.outdir, all: values.all });
  if (built.length === 0) console.log(`No group of ${values.config} has runtime 'lambda' (use --all to bundle every group).`);
  for (const bundle of built) console.log(`${bundle.name.padEnd(32)} ${(bundle.bytes / 1024).toFixed(1).padStart(7)} KB  ${relative(process.cwd(), bundle.outfile)}`);
}
