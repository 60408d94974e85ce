/**
 * Runs `omniqueue worker` as a real child process for the worker tests. Handlers of the fixture
 * append `start <id>` / `end <id>` lines to the file named by TRACE_FILE, so a test can tell which
 * messages were in flight and which finished.
 *
 * Fixture files: `omniqueue.config.ts` (memory adapter, seeded by `onReady`) and `broker.config.ts`
 * (the adapter named by the ADAPTER_SETTINGS environment variable, one group of concurrency 3 on
 * the topic in TOPIC).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const REPO = resolve(import.meta.dirname, '..');
export const CLI = join(REPO, 'runtime/cli/main.ts');

export interface RunningWorker {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly port: Promise<number>;
}

export function writeFixture(dir: string): string {
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
    join(dir, 'broker.config.ts'),
    `import { defineTopology } from ${JSON.stringify(topologyUrl)};
export default defineTopology({
  adapter: JSON.parse(process.env.ADAPTER_SETTINGS!),
  topics: { [process.env.TOPIC!]: { groups: { workers: { handler: './slow.ts', concurrency: 3 } } } },
});
`,
  );
  writeFileSync(join(dir, 'slow.ts'), traced('Number(process.env.SLOW_MS ?? 1500)'));
  writeFileSync(join(dir, 'fast.ts'), traced('1'));
  return join(dir, 'omniqueue.config.ts');
}

export function startWorker(config: string, env: Record<string, string>, extraArgs: string[] = []): RunningWorker {
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

export function traceLines(file: string): { starts: string[]; ends: string[] } {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  return {
    starts: lines.filter((line) => line.startsWith('start ')).map((line) => line.slice(6)),
    ends: lines.filter((line) => line.startsWith('end ')).map((line) => line.slice(4)),
  };
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolveTimer) => setTimeout(resolveTimer, 25));
  }
}

export async function get(port: number, path: string): Promise<{ status: number; body: string; contentType: string | null }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text(), contentType: response.headers.get('content-type') };
}

export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
