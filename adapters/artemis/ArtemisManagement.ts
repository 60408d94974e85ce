import { randomUUID } from 'node:crypto';
import type { AwaitableSender, Connection, EventContext, Receiver, Source } from 'rhea-promise';
import { ReceiverEvents } from 'rhea-promise';
import { ConnectionError, TimeoutError } from '../../runtime/errors.js';

/** The broker's management address (`management-address` in broker.xml). */
export const MANAGEMENT_ADDRESS = 'activemq.management';

/**
 * Calls operations of Artemis's broker control over AMQP: a request to `activemq.management` with
 * `_AMQ_ResourceName` / `_AMQ_OperationName` application properties and a JSON array of
 * arguments as body; the answer comes back on a dynamic reply queue. The user needs the `manage`
 * permission.
 */
export class ArtemisManagement {
  readonly #pending = new Map<string, { resolve: (body: unknown) => void; reject: (error: Error) => void }>();
  #sender: AwaitableSender | undefined;
  #receiver: Receiver | undefined;
  #replyTo: string | undefined;
  #opening: Promise<void> | undefined;

  constructor(private readonly connection: Connection) {}

  /** Invokes `operation` on the broker resource with `args`; resolves with the parsed result. */
  async invoke(operation: string, args: readonly unknown[], timeoutMs = 15_000): Promise<unknown> {
    await (this.#opening ??= this.#open().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    }));
    const id = randomUUID();
    const answer = new Promise<unknown>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    // The answer may come before the send's disposition: it is awaited below, never left unhandled.
    answer.catch(() => {});
    const timer = setTimeout(() => this.#settle(id, new TimeoutError(`Artemis management ${operation} did not answer within ${timeoutMs} ms.`)), timeoutMs);
    try {
      await this.#sender!.send(
        {
          message_id: id,
          reply_to: this.#replyTo,
          application_properties: { _AMQ_ResourceName: 'broker', _AMQ_OperationName: operation },
          body: JSON.stringify(args),
        },
        { timeoutInSeconds: timeoutMs / 1000 },
      );
      return await answer;
    } finally {
      clearTimeout(timer);
      this.#pending.delete(id);
    }
  }

  /** Forgets the links (after a reconnect they are opened again on first use). */
  reset(): void {
    this.#opening = undefined;
    for (const id of [...this.#pending.keys()]) this.#settle(id, new ConnectionError('The Artemis connection was lost during a management call.'));
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#sender?.close(), this.#receiver?.close()]);
  }

  async #open(): Promise<void> {
    const receiver = await this.connection.createReceiver({ source: { dynamic: true } as Source, credit_window: 10, autoaccept: true });
    receiver.on(ReceiverEvents.message, (context: EventContext) => {
      const message = context.message;
      const id = message?.correlation_id === undefined ? undefined : String(message.correlation_id);
      if (!message || id === undefined) return;
      const succeeded = message.application_properties?._AMQ_OperationSucceeded !== false;
      const body: unknown = typeof message.body === 'string' ? safeParse(message.body) : message.body;
      this.#settle(id, succeeded ? undefined : new ConnectionError(`Artemis management call failed: ${JSON.stringify(body)}`), body);
    });
    this.#receiver = receiver;
    this.#replyTo = receiver.source.address;
    this.#sender = await this.connection.createAwaitableSender({ target: { address: MANAGEMENT_ADDRESS } });
  }

  #settle(id: string, error: Error | undefined, body?: unknown): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    if (error) pending.reject(error);
    else pending.resolve(body);
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
