import { describe, expect, it } from 'vitest';
import * as errors from '../../runtime/errors.js';
import { ErrorCode, OmniQueueError, redact } from '../../runtime/errors.js';

type ErrorClass = new (...args: never[]) => OmniQueueError;
const subclasses = (Object.values(errors) as unknown[]).filter(
  (value): value is ErrorClass => typeof value === 'function' && value.prototype instanceof OmniQueueError,
);

function instantiate(ctor: ErrorClass): OmniQueueError {
  const args: Record<string, unknown[]> = {
    PayloadTooLargeError: [300_000, 262_144, 'SQS'],
    AdapterNotFoundError: ['nope', ['memory']],
    SchemaValidationError: [[{ message: 'Expected number', path: ['amount'] }]],
    FullBatchFailureError: [['m-1', 'm-2']],
    MessageAbandonedError: [['m-1'], 3],
  };
  return new (ctor as new (...a: unknown[]) => OmniQueueError)(...(args[ctor.name] ?? ['x']));
}

describe('errors', () => {
  it('every code is distinct', () => {
    const codes = Object.values(ErrorCode);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('has one subclass per code, each with its own code', () => {
    const codesUsed = subclasses.map((ctor) => instantiate(ctor).code);
    expect(new Set(codesUsed).size).toBe(subclasses.length);
    expect([...codesUsed].sort()).toEqual([...Object.values(ErrorCode)].sort());
  });

  it('keeps the cause, the class name and a retryable flag', () => {
    const cause = new Error('socket hang up');
    const error = new errors.ConnectionError('lost the broker', { cause });
    expect(error).toBeInstanceOf(OmniQueueError);
    expect(error.name).toBe('ConnectionError');
    expect(error.cause).toBe(cause);
    expect(error.retryable).toBe(true);
    expect(new errors.InvalidNameError('bad').retryable).toBe(false);
    expect(new errors.PublishError('nope', { retryable: false }).retryable).toBe(false);
  });

  it('never shows credentials', () => {
    const error = new errors.ConnectionError('cannot reach amqp://admin:s3cret@rabbit:5672/ (Endpoint=sb://x/;SharedAccessKey=abc123=;)');
    expect(error.message).not.toContain('s3cret');
    expect(error.message).not.toContain('abc123');
    expect(error.message).toContain('amqp://admin:***@rabbit:5672');
    expect(redact('password=hunter2 user=bob')).toBe('password=*** user=bob');
  });

  it('schema errors list the paths of the issues', () => {
    const error = new errors.SchemaValidationError([{ message: 'Expected number', path: [{ key: 'order' }, 'amount'] }]);
    expect(error.message).toContain('order.amount: Expected number');
    expect(error.issues[0]!.path).toEqual(['order', 'amount']);
  });
});
