/**
 * `omniqueue worker` as a real child process: probes, metrics, JSON logs and the graceful shutdown
 * on SIGTERM with messages in flight. Handlers append `start <id>` / `end <id>` lines to the file
 * named by TRACE_FILE.
 *
 * Two set-ups: the memory adapter, which lives inside the worker process, so the topology's
 * `onReady` seed hook publishes from inside the worker; and RabbitMQ, where this test process
 * publishes, the worker is stopped mid-flight, and the test then reads what is left in the queue to
 * show that nothing was lost or handled twice.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitMQAdapter } from '../adapters/rabbitmq/RabbitMQAdapter.js';
import { Broker, DEAD_LETTER_GROUP, deadLetterTopicOf } from '../runtime/Broker.js';
import { AMQP_URL, rabbitMissing } from './brokers/rabbitmq.js';

const REPO = resolve(import.meta.dirname, '..');
const CLI = join(REPO, 'runtime/cli/main.ts');

interface RunningWorker {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly port: Promise<number>;
}

function writeFixture(dir: string): string {
  const topologyUrl = pathToFileURL(join(REPO, 'runtime/topology.js')).href;
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(
    join(dir, 'omniqueue.config.ts'),
    `import { defineTopology } from ${JSON.stringify(topologyUrl)};
export default defineTopology({
  topics: {
    slow: { groups: { workers: { handler: './slow.ts', concurrency: 4 } } },
    fast: { groups: { counters: { handler: './fast.ts' } } },
  },
  // Seed hook: the memory broker lives in this process, so the messages are published from here.
  async onReady(broker) {
    for (let i = 0; i < 3; i++) await broker.publish('fast', { id: 'fast-' + i, body: { i } });
    for (let i = 0; i < Number(process.env.SEED_SLOW ?? 0); i++) await broker.publish('slow', { id: 'slow-' + i, body: { i } });
  },
});
`,
  );
  const traced = (delay: string) => `import { appendFileSync } from 'node:fs';
export default async (msg: { id: string }) => {
  appendFileSync(process.env.TRACE_FILE!, 'start ' + msg.id + '\\n');
  await new Promise((resolve) => setTimeout(resolve, ${delay}));
  appendFileSync(process.env.TRACE_FILE!, 'end ' + msg.id + '\\n');
};
`;
  writeFileSync(
    join(dir, 'rabbit.config.ts'),
    `import { defineTopology } from ${JSON.stringify(topologyUrl)};
export default defineTopology({
  adapter: { name: 'rabbitmq', url: process.env.AMQP_URL },
  topics: { [process.env.TOPIC!]: { groups: { workers: { handler: './slow.ts', concurrency: 3 } } } },
});
`,
  );
  writeFileSync(join(dir, 'slow.ts'), traced('Number(process.env.SLOW_MS ?? 1500)'));
  writeFileSync(join(dir, 'fast.ts'), traced('1'));
  return join(dir, 'omniqueue.config.ts');
}

function startWorker(config: string, env: Record<string, string>, extraArgs: string[] = []): RunningWorker {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'worker', '--config', config, '--port', '0', '--host', '127.0.0.1', ...extraArgs], {
    cwd: REPO,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let resolvePort!: (port: number) => void;
  const port = new Promise<number>((resolvePromise) => (resolvePort = resolvePromise));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    const match = /"port":(\d+)/.exec(stdout);
    if (match) resolvePort(Number(match[1]));
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => child.on('exit', (code, signal) => resolveExit({ code, signal })));
  return { child, stdout: () => stdout, stderr: () => stderr, exit, port };
}

function traceLines(file: string): { starts: string[]; ends: string[] } {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  return {
    starts: lines.filter((line) => line.startsWith('start ')).map((line) => line.slice(6)),
    ends: lines.filter((line) => line.startsWith('end ')).map((line) => line.slice(4)),
  };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolveTimer) => setTimeout(resolveTimer, 25));
  }
}

async function get(port: number, path: string): Promise<{ status: number; body: string; contentType: string | null }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text(), contentType: response.headers.get('content-type') };
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('omniqueue worker (child process, memory adapter seeded by onReady)', () => {
  let dir: string;
  let config: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'omniqueue-worker-'));
    config = writeFixture(dir);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves probes and metrics, then on SIGTERM finishes every message in flight and exits 0', async () => {
    const trace = join(dir, 'graceful.trace');
    const worker = startWorker(config, { TRACE_FILE: trace, SEED_SLOW: '6', SLOW_MS: '2000' });
    try {
      const port = await worker.port;
      // Four slow messages in flight (concurrency 4), the three fast ones done.
      await waitFor(() => traceLines(trace).starts.filter((id) => id.startsWith('slow-')).length === 4, 'four slow messages in flight');
      await waitFor(() => traceLines(trace).ends.filter((id) => id.startsWith('fast-')).length === 3, 'the fast messages');

      expect(await get(port, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
      expect(await get(port, '/readyz')).toMatchObject({ status: 200 });

      const metrics = await get(port, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.contentType).toContain('text/plain');
      expect(metrics.body).toContain('# TYPE omniqueue_messages_acked_total counter');
      expect(metrics.body).toMatch(/omniqueue_messages_acked_total\{topic="fast",group="counters"\} 3/);
      expect(metrics.body).toMatch(/omniqueue_messages_published_total\{topic="slow"\} 6/);
      expect(metrics.body).toMatch(/omniqueue_messages_in_flight\{topic="slow",group="workers"\} 4/);
      expect(metrics.body).toMatch(/omniqueue_messages_dead_lettered_total\{topic="slow",group="workers"\} 0/);
      expect(metrics.body).toContain('omniqueue_handler_duration_seconds_bucket');

      const inFlightAtSignal = traceLines(trace);
      expect(inFlightAtSignal.ends.filter((id) => id.startsWith('slow-'))).toEqual([]);
      worker.child.kill('SIGTERM');

      // While draining: alive, no longer ready.
      await waitFor(() => worker.stdout().includes('shutting down'), 'the shutdown log line');
      expect((await get(port, '/healthz')).status).toBe(200);
      expect((await get(port, '/readyz')).status).toBe(503);

      const exit = await worker.exit;
      expect(exit, worker.stderr()).toEqual({ code: 0, signal: null });

      const { starts, ends } = traceLines(trace);
      // Every message that was in flight at SIGTERM ended; nothing new was pulled after it.
      expect([...ends].sort()).toEqual([...starts].sort());
      expect(starts.filter((id) => id.startsWith('slow-')).sort()).toEqual(inFlightAtSignal.starts.filter((id) => id.startsWith('slow-')).sort());

      const logs = jsonLines(worker.stdout());
      expect(logs.length).toBeGreaterThan(3);
      const messages = logs.map((line) => line.msg);
      expect(messages).toContain('worker ready');
      expect(messages).toContain('worker stopped');
      expect(logs.find((line) => line.msg === 'shutting down: no new messages, finishing the messages in flight')).toMatchObject({ reason: 'SIGTERM', inFlight: 4, level: 'info' });
      expect(worker.stderr()).toBe('');
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    }
  });

  it('hands unfinished messages back when the drain timeout runs out, and still exits 0', async () => {
    const trace = join(dir, 'timeout.trace');
    const worker = startWorker(config, { TRACE_FILE: trace, SEED_SLOW: '2', SLOW_MS: '20000' }, ['--drain-timeout', '200']);
    try {
      await worker.port;
      await waitFor(() => traceLines(trace).starts.filter((id) => id.startsWith('slow-')).length === 2, 'two slow messages in flight');
      worker.child.kill('SIGTERM');
      const exit = await worker.exit;
      expect(exit, worker.stderr()).toEqual({ code: 0, signal: null });
      const warning = jsonLines(worker.stdout()).find((line) => line.level === 'warn');
      expect(warning).toMatchObject({ abandoned: 2, drainTimeoutMs: 200 });
      expect(traceLines(trace).ends.filter((id) => id.startsWith('slow-'))).toEqual([]);
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    }
  });

  it('refuses an invalid topology with exit code 2 and the bad path', async () => {
    const bad = join(dir, 'bad.config.ts');
    writeFileSync(bad, `export default { topics: { orders: { groups: { billing: { handler: './fast.ts', concurrency: 0 } } } } };\n`);
    const worker = startWorker(bad, {});
    const exit = await worker.exit;
    expect(exit.code).toBe(2);
    expect(worker.stderr()).toContain('topics.orders.groups.billing.concurrency');
  });
});

const rabbitGap = await rabbitMissing();

describe.skipIf(rabbitGap !== undefined)(`omniqueue worker (child process, RabbitMQ)${rabbitGap ? ` — skipped: ${rabbitGap}` : ''}`, () => {
  let dir: string;
  let config: string;
  const topic = `omniqueue-worker-test-${process.pid}-${Date.now()}`;
  const adapter = new RabbitMQAdapter({ url: AMQP_URL });
  const broker = new Broker(adapter, { tracing: false });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'omniqueue-worker-rabbit-'));
    writeFixture(dir);
    config = join(dir, 'rabbit.config.ts');
    await broker.init();
  });

  afterAll(async () => {
    await adapter.deleteTopology(topic, ['workers']).catch(() => undefined);
    await adapter.deleteTopology(deadLetterTopicOf(topic, 'workers'), [DEAD_LETTER_GROUP]).catch(() => undefined);
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SIGTERM with work in flight: in-flight messages finish, the rest stay queued, none lost or handled twice', async () => {
    const total = 10;
    await adapter.ensure({ topic, group: 'workers' });
    const ids = Array.from({ length: total }, (_, i) => `m-${i}`);
    for (const id of ids) await broker.publish(topic, { id, body: { id } });

    const trace = join(dir, 'rabbit.trace');
    const worker = startWorker(config, { TRACE_FILE: trace, TOPIC: topic, AMQP_URL, SLOW_MS: '2000' });
    try {
      await worker.port;
      await waitFor(() => traceLines(trace).starts.length === 3, 'three messages in flight (concurrency 3)');
      worker.child.kill('SIGTERM');
      const exit = await worker.exit;
      expect(exit, worker.stderr()).toEqual({ code: 0, signal: null });
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    }
    const { starts, ends } = traceLines(trace);
    expect([...ends].sort()).toEqual([...starts].sort());
    expect(starts).toHaveLength(3);

    // What the worker did not take is still in the group's queue, and what it finished is gone.
    const rest: string[] = [];
    const reader = await broker.subscribe(topic, (msg) => void rest.push(msg.id), 'workers', { concurrency: 16 });
    try {
      await waitFor(() => rest.length >= total - ends.length, 'the remaining messages');
    } finally {
      await reader.close();
    }
    expect(rest.filter((id) => ends.includes(id))).toEqual([]);
    expect([...ends, ...rest].sort()).toEqual([...ids].sort());
    expect(jsonLines(worker.stdout()).map((line) => line.msg)).toContain('worker stopped');
  });
});

describe('the orders example', () => {
  it('npm run example: three groups consume, order-13 ends in orders.billing.dlq, exit 0', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'examples/orders/run.ts')], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/orders\/billing\s+19\s+2\s+1/);
    expect(result.stdout).toMatch(/orders\/inventory\s+20\s+\d+\s+0/);
    expect(result.stdout).toMatch(/orders\/notifications\s+20\s+0\s+0/);
    expect(result.stdout).toMatch(/order-13\s+max-attempts-exceeded\s+3\s+Error: cannot charge a negative amount \(-42\)/);
  });
});
