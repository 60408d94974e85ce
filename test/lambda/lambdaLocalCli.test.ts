/** `omniqueue lambda-local` as a child process: polls a queue on the emulator and invokes a built bundle. */
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { SQS_CLIENT_CONFIG, SQS_ENDPOINT, sqsMissing } from '../brokers/sqs.js';

const missing = await sqsMissing();

describe.skipIf(missing !== undefined)(`omniqueue lambda-local${missing ? ` — skipped: ${missing}` : ''}`, () => {
  it('invokes the bundle with real SQS events, deletes what succeeded and leaves the failure, exits 0 on SIGTERM', async () => {
    const sqs = new SQSClient({ ...SQS_CLIENT_CONFIG, credentials: { ...SQS_CLIENT_CONFIG.credentials } });
    const queue = `cli-local-${randomUUID().slice(0, 8)}`;
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: queue, Attributes: { VisibilityTimeout: '30' } }));
    const outdir = resolve('node_modules/.cache/omniqueue-cli');
    mkdirSync(outdir, { recursive: true });
    const entry = join(outdir, `entry-${queue}.ts`);
    writeFileSync(
      entry,
      `import { sqsHandler } from ${JSON.stringify(resolve('triggers/lambda/index.ts'))};
       export const handler = sqsHandler((msg) => { if (msg.body.fail) throw new Error('nope'); }, { tracing: false, changeVisibility: false });`,
    );
    const bundle = join(outdir, `bundle-${queue}.mjs`);
    await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', outfile: bundle, external: ['@aws-sdk/*'], logLevel: 'silent' });

    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'lambda-local', '--queue', queue, '--bundle', bundle, '--endpoint', SQS_ENDPOINT, '--batch-size', '10', '--window-ms', '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      await expect.poll(() => stderr, { timeout: 20_000 }).toContain('polling');
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify({ fail: false }) }));
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify({ fail: true }) }));
      await expect
        .poll(() => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { deleted: string[]; failed: string[] }).reduce((sum, line) => sum + line.deleted.length + line.failed.length, 0), { timeout: 20_000 })
        .toBe(2);
      const lines = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { deleted: string[]; failed: string[] });
      expect(lines.flatMap((line) => line.deleted)).toHaveLength(1);
      expect(lines.flatMap((line) => line.failed)).toHaveLength(1);
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessages'] }));
      expect(Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(Attributes?.ApproximateNumberOfMessages ?? 0)).toBe(1);
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((done) => child.once('exit', done));
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await sqs.send(new DeleteQueueCommand({ QueueUrl }));
      sqs.destroy();
    }
  });
});
