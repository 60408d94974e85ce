/**
 * Lambda bundle benchmark: the same small handler as an OmniQueue `sqsHandler` and as a Powertools
 * `BatchProcessor` handler, each bundled by esbuild into one minified ESM file (AWS SDK external, as
 * in the Lambda Node runtime). Prints each bundle's size and its cold-import time (a fresh `node`
 * per run, median of RUNS).
 *
 *   npx tsx bench/lambda.ts            # RUNS=21 by default; also part of `npm run bench`
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow } from './stats.js';


const entries = {
  omniqueue: `import { sqsHandler } from '${resolve('triggers/lambda/index.ts')}';
export const handler = sqsHandler(async (message) => { if (message.body.fail) throw new Error('x'); });`,
  powertools: `import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
const processor = new BatchProcessor(EventType.SQS);
const record = async (r) => { const body = JSON.parse(r.body); if (body.fail) throw new Error('x'); };
export const handler = async (event, context) => processPartialResponse(event, record, processor, { context });`,
};

/** Bundle size and cold-import time of an `sqsHandler` bundle beside a Powertools `BatchProcessor` bundle. */
export async function runLambdaBench(options: { runs?: number } = {}): Promise<BenchRow[]> {
const RUNS = options.runs ?? Number(process.env.RUNS ?? 21);
const dir = resolve('node_modules/.cache/omniqueue-bench');
mkdirSync(dir, { recursive: true });
const results: { name: string; bytes: number; medianMs: number }[] = [];
for (const [name, source] of Object.entries(entries)) {
  const entry = join(dir, `${name}-entry.ts`);
  const outfile = join(dir, `${name}.mjs`);
  writeFileSync(entry, source);
  await build({ entryPoints: [entry], bundle: true, minify: true, format: 'esm', platform: 'node', target: 'node20', outfile, external: ['@aws-sdk/*'], logLevel: 'silent', nodePaths: [resolve('node_modules')] });
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `const t=performance.now(); await import(${JSON.stringify(outfile)}); console.log(performance.now()-t);`]);
    times.push(Number(out.toString().trim()));
  }
  times.sort((a, b) => a - b);
  results.push({ name, bytes: statSync(outfile).size, medianMs: times[Math.floor(times.length / 2)]! });
}
const baseline = results.find((result) => result.name === 'powertools');
return results.map(({ name, bytes, medianMs }) => ({
  name: 'Lambda SQS handler bundle: cold import',
  client: name === 'omniqueue' ? 'omniqueue sqsHandler (full pipeline)' : 'Powertools BatchProcessor (batch loop only)',
  throughput: 1000 / medianMs,
  p50Ms: medianMs,
  ratio: name === 'omniqueue' && baseline ? baseline.medianMs / medianMs : undefined,
  note: `${(bytes / 1024).toFixed(1)} KB minified; msg/s column = imports/s; median of ${RUNS} fresh node processes`,
}));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const row of await runLambdaBench()) console.log(`${row.client.padEnd(44)} ${row.note}  cold import median ${row.p50Ms!.toFixed(1)} ms`);
}
