/**
 * `omniqueue worker` as a real child process on the memory adapter, which lives inside the worker
 * process (the topology's `onReady` seed hook publishes from inside the worker): probes, metrics,
 * JSON logs and the graceful shutdown on SIGTERM with messages in flight; and the orders example.
 * The same shutdown on real brokers is in workerSigterm.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, jsonLines, REPO, startWorker, traceLines, waitFor, writeFixture } from './workerHarness.js';

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
