import { resolve } from 'node:path';
import type { Invocation } from '../../triggers/lambda/localRunner.js';
import type { CliIo } from './program.js';
import { ExitCode, exitCodeOf } from './exitCode.js';

/** Options of `omniqueue lambda-local`, as parsed. */
export interface LambdaLocalCommandOptions {
  /** Queue URL or name. */
  readonly queue: string;
  /** Built bundle (or any module) exporting the Lambda handler. */
  readonly bundle: string;
  /** Export name of the handler. */
  readonly export: string;
  /** Records per invocation. */
  readonly batchSize: number;
  /** Batching window in ms. */
  readonly windowMs: number;
  /** Function timeout in ms. */
  readonly timeoutMs: number;
  /** Invocations at once. */
  readonly concurrency: number;
  /** SQS endpoint (the emulator). */
  readonly endpoint?: string;
  /** AWS region. */
  readonly region: string;
}

/**
 * `omniqueue lambda-local`: polls a queue the way Lambda's SQS event source mapping does and
 * invokes a built function bundle with real SQS events, until SIGINT/SIGTERM. Loads the AWS SDK
 * only here, never in the function bundle.
 */
export async function runLambdaLocal(options: LambdaLocalCommandOptions, io: CliIo): Promise<number> {
  try {
    const { LocalRunner } = await import('../../triggers/lambda/localRunner.js');
    const runner = new LocalRunner({
      queue: options.queue,
      handler: resolve(options.bundle),
      exportName: options.export,
      batchSize: options.batchSize,
      maximumBatchingWindowMs: options.windowMs,
      functionTimeoutMs: options.timeoutMs,
      maximumConcurrency: options.concurrency,
      sqs: {
        region: options.region,
        ...(options.endpoint ? { endpoint: options.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
      },
      onInvoke: (invocation) => io.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...summarise(invocation) })}\n`),
    });
    await runner.start();
    io.stderr.write(`polling ${options.queue} → ${options.bundle} (batch ${options.batchSize}, window ${options.windowMs} ms); Ctrl-C to stop\n`);
    await new Promise<void>((done) => {
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    });
    await runner.stop();
    return ExitCode.Ok;
  } catch (error) {
    io.stderr.write(`omniqueue lambda-local: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeOf(error);
  }
}

function summarise(invocation: Invocation): Record<string, unknown> {
  return {
    records: invocation.event.Records.length,
    deleted: invocation.deleted,
    failed: invocation.failed,
    ...(invocation.error === undefined ? {} : { error: invocation.error instanceof Error ? invocation.error.message : String(invocation.error) }),
  };
}
