/**
 * Lambda bundle benchmark: the same small handler as an OmniQueue `sqsHandler` and as a Powertools
 * `BatchProcessor` handler, each bundled by esbuild into one minified ESM file (AWS SDK external, as
 * in the Lambda Node runtime). Prints each bundle's size and its cold-import time (a fresh `node`
 * per run, median of RUNS).
 *
 *   npx tsx bench/lambda.ts            # RUNS=21 by default
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const RUNS = Number(process.env.RUNS ?? 21);
const dir = resolve('node_modules/.cache/omniqueue-bench');
mkdirSync(dir, { recursive: true });

const entries = {
  omniqueue: `import { sqsHandler } from '${resolve('triggers/lambda/index.ts')}';
export const handler = sqsHandler(async (message) => { if (message.body.fail) throw new Error('x'); });`,
  powertools: `import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
const processor = new BatchProcessor(EventType.SQS);
const record = async (r) => { const body = JSON.parse(r.body); if (body.fail) throw new Error('x'); };
export const handler = async (event, context) => processPartialResponse(event, record, processor, { context });`,
};

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
for (const { name, bytes, medianMs } of results) console.log(`${name.padEnd(11)} ${(bytes / 1024).toFixed(1).padStart(7)} KB minified   cold import median ${medianMs.toFixed(1)} ms (${RUNS} runs)`);
