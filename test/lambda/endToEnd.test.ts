/**
 * End to end on the emulator: publish to the SNS topic → group queue → local event-source runner →
 * the esbuild-bundled function → a failing record is retried with its receive count rising and
 * ends in the group's DLQ; the others are deleted; nothing is lost.
 */
import { GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PACKED_ATTRIBUTE } from '../../adapters/sqs/codec.js';
import { sqsQueueName } from '../../adapters/sqs/names.js';
import { SqsAdapter } from '../../adapters/sqs/SqsAdapter.js';
import { Broker, deadLetterTopicOf } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { LocalRunner, type Invocation } from '../../triggers/lambda/localRunner.js';
import { SQS_CLIENT_CONFIG, SQS_ENDPOINT, sqsMissing, sqsTestOptions } from '../brokers/sqs.js';

const missing = await sqsMissing();

describe.skipIf(missing !== undefined)(`Lambda end to end on the emulator${missing ? ` — skipped: ${missing}` : ''}`, () => {
  it('SNS → SQS → runner → bundle: the poison record is retried (receive count 1, 2, 3) then dead-lettered; the rest deleted; none lost', async () => {
    const topic = `e2e.orders.${randomUUID().slice(0, 8)}`;
    const group = 'billing';
    process.env.E2E_TOPIC = topic;
    process.env.E2E_GROUP = group;
    process.env.E2E_SQS_ENDPOINT = SQS_ENDPOINT;

    const outdir = resolve('node_modules/.cache/omniqueue-e2e');
    mkdirSync(outdir, { recursive: true });
    const bundle = join(outdir, `billing-${randomUUID().slice(0, 8)}.mjs`);
    await build({ entryPoints: ['test/lambda/fixtures/billingHandler.ts'], bundle: true, minify: true, format: 'esm', platform: 'node', outfile: bundle, external: ['@aws-sdk/*'], logLevel: 'silent' });

    const broker = new Broker(new SqsAdapter(sqsTestOptions()), { logger: silentLogger });
    await broker.init();
    const sqs = new SQSClient({ ...SQS_CLIENT_CONFIG, credentials: { ...SQS_CLIENT_CONFIG.credentials } });
    const invocations: Invocation[] = [];
    let runner: LocalRunner | undefined;
    try {
      // The topology: topic, group queue (+ its DLQ via redrive), as `omniqueue provision` would.
      const adapter = new SqsAdapter(sqsTestOptions());
      await adapter.connect();
      await adapter.ensure({ topic, group, retry: { maxAttempts: 3, maxDelayMs: 50 } });
      await adapter.ensure({ topic: deadLetterTopicOf(topic, group), group: 'dlq' });
      await adapter.close();

      const ids: string[] = [];
      for (let orderId = 1; orderId <= 8; orderId++) {
        ids.push((await broker.publish(topic, { body: { orderId, poison: orderId === 5 }, headers: { 'x-tenant': 'acme' } })).id);
      }
      const poisonId = ids[4]!;

      runner = await new LocalRunner({
        queue: sqsQueueName(topic, group, false),
        handler: bundle,
        batchSize: 10,
        maximumBatchingWindowMs: 300,
        waitTimeSeconds: 1,
        functionTimeoutMs: 10_000,
        sqs: { ...SQS_CLIENT_CONFIG },
        onInvoke: (invocation) => invocations.push(invocation),
      }).start();

      const seen = () => (globalThis as { __omniqueueE2E?: { id: string; attempt: number }[] }).__omniqueueE2E ?? [];
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && !seen().some((entry) => entry.id === poisonId && entry.attempt === 3)) await new Promise((r) => setTimeout(r, 100));
      await runner.stop();
      runner = undefined;

      // The poison record: attempts 1, 2, 3 (ApproximateReceiveCount rising), then dead-lettered.
      expect(seen().filter((entry) => entry.id === poisonId).map((entry) => entry.attempt)).toEqual([1, 2, 3]);
      // Every other record handled exactly once, on its first attempt, and deleted.
      for (const id of ids.filter((id) => id !== poisonId)) expect(seen().filter((entry) => entry.id === id).map((entry) => entry.attempt)).toEqual([1]);
      expect(invocations.flatMap((invocation) => invocation.deleted)).toHaveLength(8);
      expect(invocations.some((invocation) => invocation.failed.length > 0)).toBe(true);

      const queueUrl = (await sqs.send(new GetQueueUrlCommand({ QueueName: sqsQueueName(topic, group, false) }))).QueueUrl!;
      const depth = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes!;
      expect([depth.ApproximateNumberOfMessages, depth.ApproximateNumberOfMessagesNotVisible]).toEqual(['0', '0']);

      const dlqUrl = (await sqs.send(new GetQueueUrlCommand({ QueueName: sqsQueueName(deadLetterTopicOf(topic, group), 'dlq', false) }))).QueueUrl!;
      const dead = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }))).Messages ?? [];
      expect(dead).toHaveLength(1);
      expect(JSON.parse(dead[0]!.Body!)).toEqual({ orderId: 5, poison: true });
      expect(dead[0]!.MessageAttributes!['x-tenant']!.StringValue).toBe('acme');
      expect(JSON.parse(dead[0]!.MessageAttributes![PACKED_ATTRIBUTE]!.StringValue!)).toMatchObject({
        'omniqueue-id': poisonId,
        'omniqueue-dlq-reason': 'max-attempts-exceeded',
        'omniqueue-dlq-attempts': '3',
      });
    } finally {
      await runner?.stop();
      await broker.close();
      sqs.destroy();
    }
  }, 60_000);
});
