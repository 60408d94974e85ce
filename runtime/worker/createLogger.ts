import { pino, type Level, type Logger as PinoLogger } from 'pino';

/**
 * The worker's default logger: pino writing one JSON object per line to stdout, with the level as
 * a label (`"level":"info"`) and an ISO timestamp, which log collectors read without mapping.
 */
export function createLogger(level: Level | 'silent' = (process.env.LOG_LEVEL as Level | undefined) ?? 'info'): PinoLogger {
  return pino({
    level,
    base: { service: 'omniqueue-worker', pid: process.pid },
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
