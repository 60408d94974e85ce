import { PassThrough } from 'node:stream';
import { run, type CliIo } from '../runtime/cli/program.js';

/** What one `omniqueue provision` run printed and returned. */
export interface ProvisionRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `omniqueue provision …` in-process and collects its output. */
export async function provision(...args: string[]): Promise<ProvisionRun> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  err.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const io: CliIo = { stdout: out, stderr: err };
  const code = await run(['node', 'omniqueue', 'provision', ...args], io);
  await new Promise((resolve) => setImmediate(resolve));
  return { code, stdout, stderr };
}
