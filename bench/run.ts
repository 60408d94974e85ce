/**
 * `npm run bench`: every benchmark side by side with its raw client, in one run, as ratios.
 * Broker benchmarks run when their module exists and their broker answers; the rest are listed as
 * not run, with the reason. `--only memory,rabbitmq` limits the run; `--out docs/benchmarks.md`
 * also writes the tables there.
 */
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { renderTable, type BenchRow } from './stats.js';

interface Suite {
  readonly name: string;
  readonly module: string;
  readonly exportName: string;
}

const SUITES: readonly Suite[] = [
  { name: 'memory', module: './memory.ts', exportName: 'runMemoryBench' },
  { name: 'rabbitmq', module: './rabbitmq.ts', exportName: 'runRabbitBench' },
  { name: 'nats', module: './nats.ts', exportName: 'runNatsBench' },
  { name: 'kafka', module: './kafka.ts', exportName: 'runKafkaBench' },
  { name: 'redis', module: './redis.ts', exportName: 'runRedisBench' },
  { name: 'lambda', module: './lambda.ts', exportName: 'runLambdaBench' },
  { name: 'pulsar', module: './pulsar.ts', exportName: 'runPulsarBench' },
  { name: 'artemis', module: './artemis.ts', exportName: 'runArtemisBench' },
  { name: 'zeromq', module: './zeromq.ts', exportName: 'runZeroMqBench' },
];

const { values } = parseArgs({ options: { only: { type: 'string' }, out: { type: 'string' } } });
const only = values.only?.split(',').map((name) => name.trim());
const sections: string[] = [];
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
console.log(`OmniQueue benchmarks — ${machine}\n`);

for (const suite of SUITES) {
  if (only && !only.includes(suite.name)) continue;
  const path = new URL(suite.module, import.meta.url);
  if (!existsSync(path)) continue;
  process.stdout.write(`== ${suite.name} … `);
  const started = performance.now();
  try {
    const module = (await import(path.href)) as Record<string, () => Promise<BenchRow[]>>;
    const rows = await module[suite.exportName]!();
    const table = renderTable(rows);
    console.log(`${((performance.now() - started) / 1000).toFixed(1)} s\n\n${table}\n`);
    sections.push(`## ${suite.name}\n\n${table}\n`);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    console.log(`not run: ${reason}\n`);
    sections.push(`## ${suite.name}\n\nNot run: ${reason}\n`);
  }
}

if (values.out) {
  writeFileSync(values.out, `# Benchmarks\n\nMachine: ${machine}. Command: \`npm run bench\`.\n\n${sections.join('\n')}`);
  console.log(`written to ${values.out}`);
}
