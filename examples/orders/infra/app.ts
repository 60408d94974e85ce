/**
 * The orders example as an AWS CDK app: one SNS topic, an SQS queue and DLQ per group, and the
 * `notifications` group on Lambda (the other groups stay container workers), checked by cdk-nag's
 * AwsSolutions pack. Synthesizes offline — no AWS account, no Docker:
 *
 *   npx tsx examples/orders/infra/app.ts                 # writes examples/orders/infra/cdk.out
 *   CDK_OUTDIR=/tmp/out npx tsx examples/orders/infra/app.ts
 *   cd examples/orders/infra && npx cdk synth            # with the aws-cdk CLI installed (cdk.json)
 *
 * The handlers are the same modules the worker runs; `bundleLambdaFunctions` builds the Lambda
 * bundle with the project's esbuild settings (esbuild.config.mjs).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Aspects, Stack } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { bundleLambdaFunctions, OmniQueueTopology } from '../../../infra/cdk/index.js';
import { loadTopology } from '../../../runtime/topology.js';

const here = dirname(fileURLToPath(import.meta.url));

/** This stack runs `orders/notifications` on Lambda; the topology file leaves every group on the worker. */
export const runtimes = { 'orders/notifications': 'lambda' } as const;

const app = new App({ outdir: process.env.CDK_OUTDIR ?? join(here, 'cdk.out') });
const topology = await loadTopology(join(here, '..', 'omniqueue.config.ts'));
const code = await bundleLambdaFunctions(topology, { runtimes, outdir: join(app.outdir, '.omniqueue-functions') });
const stack = new Stack(app, 'OmniQueueOrders', { description: 'OmniQueue orders example: SNS/SQS topology and Lambda consumers' });
new OmniQueueTopology(stack, 'Orders', {
  topology,
  runtimes,
  code,
  lambda: { 'orders/notifications': { batchSize: 10, batchingWindowSeconds: 1, maxConcurrency: 5, timeoutSeconds: 20, memoryMb: 256 } },
});
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
app.synth();
