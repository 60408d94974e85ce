/** Structured log fields. */
export type LogFields = Record<string, unknown>;

/** The logger OmniQueue writes to. A pino logger satisfies it as it is. */
export interface Logger {
  debug(fields: LogFields, message?: string): void;
  info(fields: LogFields, message?: string): void;
  warn(fields: LogFields, message?: string): void;
  error(fields: LogFields, message?: string): void;
}

/** A logger that drops everything. */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

/** The default logger: warnings and errors as JSON lines on stderr, nothing else. */
export const stderrLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn(fields: LogFields, message?: string) {
    process.stderr.write(`${JSON.stringify({ level: 'warn', time: Date.now(), ...fields, msg: message })}\n`);
  },
  error(fields: LogFields, message?: string) {
    process.stderr.write(`${JSON.stringify({ level: 'error', time: Date.now(), ...fields, msg: message })}\n`);
  },
});
