import { randomUUID } from 'node:crypto';
import type { AwaitableSender, Connection, EventContext, Receiver, Source } from 'rhea-promise';
import { ReceiverEvents } from 'rhea-promise';
import { ConnectionError, TimeoutError } from '../../runtime/errors.js';

/** The broker's management address (`management-address` in broker.xml). */
export const MANAGEMENT_ADDRESS = 'activemq.management';

/** The answer of one management request: whether the broker ran it, and the parsed JSON body. */
export interface ManagementAnswer {
  /** `_AMQ_OperationSucceeded` of the reply (false: the resource is missing, the call failed …). */
  readonly succeeded: boolean;
  /** The reply body: a JSON array holding the result, or the error text when `succeeded` is false. */
  readonly body: unknown;
}

/**
 * Calls operations and reads attributes of Artemis's management resources over AMQP: a request to
 * `activemq.management` with `_AMQ_ResourceName` and `_AMQ_OperationName` (or `_AMQ_Attribute`)
 * application properties and a JSON array of arguments as body; the answer comes back on a dynamic
 * reply queue. The user needs the `manage` permission. One instance serves one connection: when
 * that connection is lost, {@link ArtemisManagement.reset} fails the calls under way and the
 * adapter makes a new instance on its next connection.
 */
export class ArtemisManagement {
  readonly #pending = new Map<string, { resolve: (answer: ManagementAnswer) => void; reject: (error: Error) => void }>();
  #sender: AwaitableSender | undefined;
  #replyTo: string | undefined;
  #opening: Promise<void> | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly signal?: AbortSignal,
  ) {}

  /** Invokes `operation` on the broker resource with `args`; resolves with the parsed result, rejects when the broker reports a failure. */
  async invoke(operation: string, args: readonly unknown[], timeoutMs = 15_000): Promise<unknown> {
    const answer = await this.request({ _AMQ_ResourceName: 'broker', _AMQ_OperationName: operation }, args, timeoutMs);
    if (!answer.succeeded) throw new ConnectionError(`Artemis management call ${operation} failed: ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  /**
   * Reads attribute `attribute` of the management resource `resource` (`address.<name>`,
   * `queue.<name>` …). Resolves with `found: false` when the broker has no such resource.
   */
  async attribute(resource: string, attribute: string, timeoutMs = 15_000): Promise<{ readonly found: boolean; readonly value: unknown }> {
    const answer = await this.request({ _AMQ_ResourceName: resource, _AMQ_Attribute: attribute }, [], timeoutMs);
    return { found: answer.succeeded, value: Array.isArray(answer.body) ? answer.body[0] : answer.body };
  }

  /** Sends one management request and waits for its reply. */
  async request(properties: Readonly<Record<string, string>>, args: readonly unknown[], timeoutMs = 15_000): Promise<ManagementAnswer> {
    await (this.#opening ??= this.#open().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    }));
    const id = randomUUID();
    const answer = new Promise<ManagementAnswer>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    // The answer may come before the send's disposition: it is awaited below, never left unhandled.
    answer.catch(() => {});
    const what = properties._AMQ_OperationName ?? properties._AMQ_Attribute ?? 'request';
    const timer = setTimeout(() => this.#settle(id, new TimeoutError(`Artemis management ${what} did not answer within ${timeoutMs} ms.`)), timeoutMs);
    try {
      await this.#sender!.send(
        { message_id: id, reply_to: this.#replyTo, application_properties: { ...properties }, body: JSON.stringify(args) },
        { timeoutInSeconds: timeoutMs / 1000, abortSignal: this.signal },
      );
      return await answer;
    } catch (error) {
      if (this.signal?.aborted) throw new ConnectionError(`The Artemis connection was lost during the management ${what}.`, { cause: error });
      throw error;
    } finally {
      clearTimeout(timer);
      this.#pending.delete(id);
    }
  }

  /** Fails every call under way (the connection was lost); the links are opened again on next use. */
  reset(): void {
    this.#opening = undefined;
    for (const id of [...this.#pending.keys()]) this.#settle(id, new ConnectionError('The Artemis connection was lost during a management call.'));
  }

  async #open(): Promise<void> {
    const receiver: Receiver = await this.connection.createReceiver({ source: { dynamic: true } as Source, credit_window: 10, autoaccept: true, abortSignal: this.signal });
    receiver.on(ReceiverEvents.message, (context: EventContext) => {
      const message = context.message;
      const id = message?.correlation_id === undefined ? undefined : String(message.correlation_id);
      if (!message || id === undefined) return;
      const succeeded = message.application_properties?._AMQ_OperationSucceeded !== false;
      const body: unknown = typeof message.body === 'string' ? safeParse(message.body) : message.body;
      this.#settle(id, undefined, { succeeded, body });
    });
    this.#replyTo = receiver.source.address;
    this.#sender = await this.connection.createAwaitableSender({ target: { address: MANAGEMENT_ADDRESS }, abortSignal: this.signal });
  }

  #settle(id: string, error: Error | undefined, answer?: ManagementAnswer): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    if (error) pending.reject(error);
    else pending.resolve(answer!);
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
