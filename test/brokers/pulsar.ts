/**
 * Test helper for Pulsar: starts the standalone of `test/brokers/pulsar.sh` (jars from Maven
 * Central, cached outside the repo) and tells tests whether to run, fail or report the gap.
 *
 * With `OMNIQUEUE_PULSAR_URL=http://host:port` set, that Pulsar (web service with the WebSocket
 * service on) is used as it is and the script is not run.
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BrokerUnavailableError } from '../../runtime/errors.js';

/** The start script beside this file. */
export const PULSAR_SCRIPT = fileURLToPath(new URL('./pulsar.sh', import.meta.url));

const external = process.env.OMNIQUEUE_PULSAR_URL;

/** Runs `pulsar.sh <command>`, its progress lines going to this process's stderr; resolves with its stdout. */
export function runPulsarScript(command: 'start' | 'stop' | 'restart' | 'status' | 'url', timeoutMs = 900_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('bash', [PULSAR_SCRIPT, command], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new BrokerUnavailableError(`test/brokers/pulsar.sh ${command} failed: ${error.message}\n${stderr.split('\n').slice(-15).join('\n')}`, { cause: error }));
      else resolve(stdout);
    });
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  });
}

/**
 * Makes sure Pulsar answers and returns its web service URL (admin API and WebSocket service):
 * runs `pulsar.sh start` (idempotent; the first run resolves ~240 MB of jars, later runs start from
 * the cache in 10–40 s). Rejects with {@link BrokerUnavailableError} when it cannot.
 */
export async function startPulsar(): Promise<string> {
  if (external) {
    try {
      const response = await fetch(`${external.replace(/\/+$/, '')}/admin/v2/clusters`, { signal: AbortSignal.timeout(5_000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      throw new BrokerUnavailableError(`OMNIQUEUE_PULSAR_URL=${external} does not answer: ${(error as Error).message}`, { cause: error });
    }
    return external.replace(/\/+$/, '');
  }
  await runPulsarScript('start');
  return (await runPulsarScript('url')).trim();
}

/** Restarts the script's own Pulsar (fault tests); refuses for an external one. */
export async function restartPulsar(): Promise<void> {
  if (external) throw new BrokerUnavailableError(`Cannot restart the external Pulsar at ${external}.`);
  await runPulsarScript('restart');
}

/**
 * Resolved once per test file: the Pulsar URL when the Pulsar tests run, else `undefined`. With
 * `OMNIQUEUE_REQUIRE_BROKERS=1` a missing Pulsar throws (the suite fails); without it the reason is
 * printed and the caller skips with `describe.skipIf(!url)`.
 */
export async function pulsarAvailable(): Promise<string | undefined> {
  try {
    return await startPulsar();
  } catch (error) {
    if (process.env.OMNIQUEUE_REQUIRE_BROKERS === '1') throw error;
    console.warn(`[omniqueue] Pulsar tests skipped: Pulsar is not available (${(error as Error).message.split('\n')[0]}). Install a JDK 17+ and Maven, or set OMNIQUEUE_PULSAR_URL.`);
    return undefined;
  }
}

/** Publishes raw bytes with native properties the way a plain Pulsar WebSocket client does; resolves on the producer ack. */
export async function publishPlain(url: string, topic: string, payload: Uint8Array, properties: Record<string, string>, key?: string): Promise<string> {
  const { default: WebSocket } = await import('ws');
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ws/v2/producer/persistent/public/default/${topic}`);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const ack = await new Promise<{ result: string; messageId: string; errorMsg?: string }>((resolve, reject) => {
      socket.once('message', (data) => resolve(JSON.parse(data.toString()) as { result: string; messageId: string }));
      socket.once('close', () => reject(new Error('socket closed before the producer ack')));
      socket.send(JSON.stringify({ payload: Buffer.from(payload).toString('base64'), properties, context: '1', ...(key === undefined ? {} : { key }) }));
    });
    if (ack.result !== 'ok') throw new Error(`plain publish refused: ${ack.result} ${ack.errorMsg ?? ''}`);
    return ack.messageId;
  } finally {
    socket.close();
  }
}

/**
 * Lock file of the Pulsar test files: each holds it shared while it talks to the broker; the fault
 * test's broker restart holds it exclusive, so no other Pulsar test file sees the restart.
 */
export const PULSAR_LOCK = '/tmp/omniqueue-test-pulsar.lock';
