/** Structured log fields. */
export type LogFields = Record<string, unknown>;

/** The logger OmniQueue writes to. A pino logger satisfies it as it is. */
export interface Logger {
  debug(fields: LogFields, message?: string): void;
  info(fields: LogFields, message?: string): void;
  warn(fields: LogFields, message?: string): void;
  error(fields: LogFields, message?: string): void;
}

function drop(): void {}

/** A logger that drops everything. */
export const silentLogger: Logger = /* @__PURE__ */ Object.freeze({ debug: drop, info: drop, warn: drop, error: drop });

/** Writes one JSON line at `level` to stderr. */
function stderrLine(level: 'warn' | 'error'): Logger['warn'] {
  return (fields, message) => {
    process.stderr.write(`${JSON.stringify({ level, time: Date.now(), ...fields, msg: message })}\n`);
  };
}

/** The default logger: warnings and errors as JSON lines on stderr, nothing else. */
export const stderrLogger: Logger = /* @__PURE__ */ Object.freeze({ debug: drop, info: drop, warn: stderrLine('warn'), error: stderrLine('error') });
