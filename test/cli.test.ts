/**
 * The `omniqueue` command: help, usage errors and their exit codes, the memory-adapter refusal of
 * `publish`, typed topology errors, `publish` against the machine's RabbitMQ, and `provision --prune --dry-run` against NATS.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsAdapter } from '../adapters/nats/NatsAdapter.js';
import { RabbitMQAdapter } from '../adapters/rabbitmq/RabbitMQAdapter.js';
import { ExitCode } from '../runtime/cli/exitCode.js';
import { run, type CliIo } from '../runtime/cli/program.js';
import { Broker } from '../runtime/Broker.js';
import { ConfigError, ErrorCode, OmniQueueError } from '../runtime/errors.js';
import type { Message } from '../runtime/message.js';
import { defineTopology, loadTopology } from '../runtime/topology.js';
import { NATS_SERVERS, natsMissing } from './brokers/nats.js';
import { AMQP_URL, rabbitMissing } from './brokers/rabbitmq.js';

const REPO = resolve(import.meta.dirname, '..');
const CLI = join(REPO, 'runtime/cli/main.ts');

/** Runs the real command in a child process, as a user would. */
function omniqueue(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the command in this process with captured output (faster; same code path after argv). */
async function inProcess(args: string[], options: { tty?: boolean } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const capture = (tty: boolean): { stream: PassThrough & { isTTY?: boolean }; text: () => string } => {
    const stream: PassThrough & { isTTY?: boolean; columns?: number } = new PassThrough();
    if (tty) {
      stream.isTTY = true;
      stream.columns = 120;
    }
    let text = '';
    stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    return { stream, text: () => text };
  };
  const stdout = capture(false);
  const stderr = capture(options.tty ?? false);
  const io: CliIo = { stdout: stdout.stream, stderr: stderr.stream };
  const code = await run(['node', 'omniqueue', ...args], io);
  await new Promise((resolveTick) => setImmediate(resolveTick));
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

let dir: string;
let memoryConfig: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'omniqueue-cli-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(dir, 'noop.ts'), 'export default () => {};\n');
  memoryConfig = join(dir, 'memory.config.ts');
  writeFileSync(memoryConfig, `export default { topics: { orders: { groups: { billing: { handler: './noop.ts' } } } } };\n`);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('omniqueue --help', () => {
  it('describes the tool, its commands, examples and exit codes', () => {
    const { code, stdout } = omniqueue('--help');
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: omniqueue [options] [command]');
    expect(stdout).toMatch(/^\s+worker \[options\]\s+run the topology's groups/m);
    expect(stdout).toMatch(/^\s+publish \[options\] <topic>\s+publish a message/m);
    expect(stdout).toContain('Examples:');
    expect(stdout).toContain('Exit codes:');
    expect(stdout).toContain('memory adapter');
  });

  it('documents each command', async () => {
    const worker = await inProcess(['worker', '--help']);
    expect(worker.code).toBe(0);
    for (const option of ['--config <file>', '--group <name>', '--port <n>', '--drain-timeout <ms>', '/healthz', '/readyz', '/metrics', 'SIGTERM']) {
      expect(worker.stdout).toContain(option);
    }
    const publish = await inProcess(['publish', '--help']);
    expect(publish.code).toBe(0);
    for (const option of ['<topic>', '--body <json>', '--count <n>', '--header <key=value>', '--key <key>', '--config <file>', 'cannot reach', 'memory adapter']) {
      expect(publish.stdout.replace(/\s+/g, ' ')).toContain(option === 'cannot reach' ? 'only sees messages published in that same process' : option);
    }
  });

  it('prints the version', async () => {
    const { code, stdout } = await inProcess(['--version']);
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('usage errors exit 2', () => {
  it('publish with invalid JSON: a clear message, exit code 2', () => {
    const { code, stderr, stdout } = omniqueue('publish', 'orders', '--body', '{orderId: 1}');
    expect(code).toBe(ExitCode.Usage);
    expect(stdout).toBe('');
    expect(stderr).toContain('--body is not valid JSON');
    expect(stderr).toContain(`--body '{"orderId":"o-1","amount":42}'`);
  });

  it('publish through a memory topology is refused with the reason', async () => {
    const { code, stderr } = await inProcess(['publish', 'orders', '--body', '{"a":1}', '--config', memoryConfig]);
    expect(code).toBe(ExitCode.Usage);
    expect(stderr).toContain('in-process memory adapter');
    expect(stderr).toContain('could never reach a worker');
  });

  it('bad header, bad count, bad topic name, unknown option, missing body', async () => {
    const header = await inProcess(['publish', 'orders', '--body', '1', '--header', 'novalue', '--config', memoryConfig]);
    expect(header).toMatchObject({ code: ExitCode.Usage });
    expect(header.stderr).toContain("--header 'novalue' must be key=value");
    const count = await inProcess(['publish', 'orders', '--body', '1', '--count', '0']);
    expect(count.code).toBe(ExitCode.Usage);
    expect(count.stderr).toContain('must be an integer ≥ 1');
    const topic = await inProcess(['publish', 'bad topic!', '--body', '1']);
    expect(topic.code).toBe(ExitCode.Usage);
    expect(topic.stderr).toContain("Invalid topic name 'bad topic!'");
    const unknown = await inProcess(['worker', '--nope']);
    expect(unknown.code).toBe(ExitCode.Usage);
    expect(unknown.stderr).toContain("unknown option '--nope'");
    const missing = await inProcess(['publish', 'orders']);
    expect(missing.code).toBe(ExitCode.Usage);
    expect(missing.stderr).toContain("required option '-b, --body <json>' not specified");
  });

  it('a missing topology file names the file', async () => {
    const { code, stderr } = await inProcess(['worker', '--config', join(dir, 'nope.config.ts'), '--port', '0']);
    expect(code).toBe(ExitCode.Usage);
    expect(stderr).toContain('Topology file not found');
  });
});

describe('topology errors are typed', () => {
  it('defineTopology throws ConfigError naming the bad path', () => {
    const bad = (): unknown =>
      defineTopology({ topics: { orders: { groups: { billing: { handler: './billing.ts', concurrency: -1 } } } } });
    expect(bad).toThrow(ConfigError);
    try {
      bad();
    } catch (error) {
      expect(error).toBeInstanceOf(OmniQueueError);
      expect((error as ConfigError).code).toBe(ErrorCode.Config);
      expect((error as ConfigError).retryable).toBe(false);
      expect((error as Error).message).toContain('topics.orders.groups.billing.concurrency');
    }
  });

  it('loadTopology turns an error thrown inside the file into a ConfigError', async () => {
    const file = join(dir, 'throws.config.ts');
    const topologyUrl = pathToFileURL(join(REPO, 'runtime/topology.js')).href;
    writeFileSync(file, `import { defineTopology } from ${JSON.stringify(topologyUrl)};\nexport default defineTopology({ topics: { 'bad name': { groups: {} } } });\n`);
    const error = await loadTopology(file).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain("topics.bad name: Invalid topic name 'bad name'");
  });
});

const rabbitGap = await rabbitMissing();

describe.skipIf(rabbitGap !== undefined)(`omniqueue publish (RabbitMQ)${rabbitGap ? ` — skipped: ${rabbitGap}` : ''}`, () => {
  const topic = `omniqueue-cli-test-${process.pid}-${Date.now()}`;
  const adapter = new RabbitMQAdapter({ url: AMQP_URL });
  const broker = new Broker(adapter, { tracing: false });
  let config: string;

  beforeAll(async () => {
    config = join(dir, 'rabbit.config.ts');
    writeFileSync(config, `export default { adapter: { name: 'rabbitmq', url: ${JSON.stringify(AMQP_URL)} }, topics: { ${JSON.stringify(topic)}: { groups: { readers: { handler: './noop.ts' } } } } };\n`);
    await broker.init();
    await adapter.ensure({ topic, group: 'readers' });
  });

  afterAll(async () => {
    await adapter.deleteTopology(topic, ['readers']).catch(() => undefined);
    await broker.close();
  });

  it('publishes one message with headers and key, printing its id', async () => {
    const { code, stdout, stderr } = omniqueue('publish', topic, '--body', '{"orderId":"o-1","amount":42}', '-H', 'tenant=acme', '--header', 'source=cli', '--key', 'customer-7', '--config', config);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const id = /id (\S+)/.exec(stdout)?.[1];
    expect(id).toBeDefined();
    const received: Message[] = [];
    const reader = await broker.subscribe(topic, (msg) => void received.push(msg), 'readers');
    try {
      await waitFor(() => received.length === 1);
    } finally {
      await reader.close();
    }
    expect(received[0]).toMatchObject({ id, body: { orderId: 'o-1', amount: 42 }, key: 'customer-7', headers: { tenant: 'acme', source: 'cli' } });
  });

  it('publishes --count N with progress lines (not a TTY) or a progress bar (TTY)', async () => {
    const plain = await inProcess(['publish', topic, '--body', '{"n":1}', '--count', '150', '--config', config]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^Published 150 messages to \S+ in \d+ ms/);
    expect(plain.stderr).toContain('publishing: 150/150 (100%)');
    const tty = await inProcess(['publish', topic, '--body', '{"n":2}', '--count', '120', '--config', config], { tty: true });
    expect(tty.code, tty.stderr).toBe(0);
    expect(tty.stderr).toContain('120/120 messages');
    expect(tty.stderr).toContain('█');

    const bodies: unknown[] = [];
    const reader = await broker.subscribe(topic, (msg) => void bodies.push(msg.body), 'readers', { concurrency: 64 });
    try {
      await waitFor(() => bodies.length >= 270);
    } finally {
      await reader.close();
    }
    expect(bodies.filter((body) => (body as { n: number }).n === 1)).toHaveLength(150);
    expect(bodies.filter((body) => (body as { n: number }).n === 2)).toHaveLength(120);
  });
});

const natsGap = await natsMissing();
describe.skipIf(natsGap !== undefined)(`omniqueue provision --prune --dry-run (NATS)${natsGap ? ` — skipped: ${natsGap}` : ''}`, () => {
  const topic = `cli_prune_${Date.now().toString(36)}`;
  const adapter = new NatsAdapter({ servers: NATS_SERVERS });
  afterAll(async () => {
    await adapter.deleteTopics([topic]).catch(() => undefined);
    await adapter.close();
  });

  it('prints the deletions and changes nothing', async () => {
    await adapter.connect();
    await adapter.ensure({ topic, group: 'billing' });
    await adapter.ensure({ topic, group: 'retired' });
    const config = join(dir, 'nats-prune.config.ts');
    writeFileSync(config, `export default { adapter: { name: 'nats', servers: ${JSON.stringify(NATS_SERVERS)} }, topics: { ${JSON.stringify(topic)}: { groups: { billing: { handler: './noop.ts' } } } } };\n`);
    const result = omniqueue('provision', '--config', config, '--prune', '--dry-run');
    expect(result.code, result.stderr).toBe(ExitCode.Ok);
    expect(result.stdout).toContain(`- delete     durable consumer ${topic}/retired`);
    expect(result.stdout).toContain('1 to delete.');
    expect(result.stdout).toContain('Dry run: nothing changed.');
    expect(await adapter.planPrune(topic, ['billing'])).toHaveLength(1);
    expect((await adapter.plan({ topic: `${topic}.billing.dlq` }))[0]?.action).toBe('create');
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolveTimer) => setTimeout(resolveTimer, 20));
  }
}
