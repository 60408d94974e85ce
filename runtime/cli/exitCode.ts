import { ErrorCode } from '../errors.js';

/** Exit codes of the `omniqueue` command. */
export const ExitCode = {
  /** Done. */
  Ok: 0,
  /** A runtime failure: broker unreachable, publish rejected, start-up failed. */
  Failure: 1,
  /** A usage or configuration error: bad option, invalid JSON, invalid topology. */
  Usage: 2,
} as const;

/** Union of {@link ExitCode} values. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

const USAGE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.Config,
  ErrorCode.InvalidOptions,
  ErrorCode.InvalidName,
  ErrorCode.InvalidMessage,
  ErrorCode.AdapterNotFound,
  ErrorCode.MissingGroup,
]);

/**
 * The exit code an error stands for: usage and configuration errors (checked by their stable
 * `code`, so errors thrown by a separately loaded copy of the runtime count too) exit 2, anything
 * else 1.
 */
export function exitCodeOf(error: unknown): ExitCode {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && USAGE_CODES.has(code) ? ExitCode.Usage : ExitCode.Failure;
}
