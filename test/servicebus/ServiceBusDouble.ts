/**
 * A test double of the `@azure/service-bus` client, sender, peek-lock receiver and administration
 * client — only what the adapter calls, with Service Bus's semantics for it:
 *
 * - topics fan out to subscriptions whose rule (the small SQL subset OmniQueue uses: `[p] IS NULL`,
 *   `[p] = 'v'`, `[p] <> 'v'`, AND, OR, parentheses) matches the message's application properties;
 * - peek-lock: a delivered message is locked with a lock token; `deliveryCount` is the AMQP count
 *   the JS SDK reports (0 on the first delivery); abandon and lock expiry put it back with
 *   `deliveryCount + 1`; once `deliveryCount` reaches the subscription's `maxDeliveryCount` it is
 *   dead-lettered with reason `MaxDeliveryCountExceeded`;
 * - `subscribe` hands out at most `maxConcurrentCalls` messages and takes a new one only when a
 *   `processMessage` promise settles;
 * - locks expire after `lockDurationMs` unless the receiver renews them (within
 *   `maxAutoLockRenewalDurationInMs`); settling an expired or settled lock throws `MessageLockLost`;
 * - dead letters carry `DeadLetterReason`/`DeadLetterErrorDescription` and go to the subscription's
 *   dead-letter sub-queue, or to `forwardDeadLetteredMessagesTo`;
 * - `scheduleMessages` enqueues at the scheduled time.
 *
 * Every SDK call is recorded in {@link ServiceBusDouble.calls} so tests can assert the exact calls.
 */
import { randomUUID } from 'node:crypto';
import type { CreateSubscriptionOptions, CreateTopicOptions, MessageHandlers, ServiceBusReceiverOptions, SubscribeOptions } from '@azure/service-bus';
import type {
  ApplicationPropertyValue,
  ServiceBusAdministrationLike,
  ServiceBusClientLike,
  ServiceBusMessage,
  ServiceBusReceivedMessage,
  ServiceBusReceiverLike,
  ServiceBusSenderLike,
} from '../../adapters/servicebus/clients.js';

/** One recorded SDK call. */
export interface RecordedCall {
  readonly op: string;
  readonly entity: string;
  readonly args: readonly unknown[];
}

interface Stored {
  readonly body: unknown;
  readonly messageId: string | undefined;
  readonly contentType: string | undefined;
  readonly correlationId: string | undefined;
  readonly subject: string | undefined;
  readonly partitionKey: string | undefined;
  readonly sessionId: string | undefined;
  applicationProperties: Record<string, ApplicationPropertyValue>;
  deliveryCount: number;
  readonly enqueuedTimeUtc: Date;
  readonly sequenceNumber: number;
}

interface Lock {
  readonly stored: Stored;
  readonly receiver: DoubleReceiver;
  readonly lockedAt: number;
  timer: NodeJS.Timeout | undefined;
}

class SubscriptionState {
  readonly active: Stored[] = [];
  readonly deadLetters: Stored[] = [];
  readonly locks = new Map<string, Lock>();
  readonly receivers = new Set<DoubleReceiver>();

  constructor(
    readonly topic: string,
    readonly name: string,
    readonly options: CreateSubscriptionOptions,
  ) {}

  get maxDeliveryCount(): number {
    return this.options.maxDeliveryCount ?? 10;
  }

  accepts(properties: Record<string, ApplicationPropertyValue>): boolean {
    const sql = this.options.defaultRuleOptions?.filter && 'sqlExpression' in this.options.defaultRuleOptions.filter ? this.options.defaultRuleOptions.filter.sqlExpression : undefined;
    return sql === undefined || evaluateFilter(sql, properties);
  }
}

/** Settings of the double. */
export interface ServiceBusDoubleOptions {
  /** Lock duration of every subscription. Default 30 s (long enough never to matter in a test). */
  readonly lockDurationMs?: number;
}

/** One in-memory Service Bus namespace with its SDK clients. */
export class ServiceBusDouble {
  readonly calls: RecordedCall[] = [];
  readonly topics = new Map<string, Map<string, SubscriptionState>>();
  readonly timers = new Set<NodeJS.Timeout>();
  readonly lockDurationMs: number;
  #sequence = 0;
  /** Most messages locked at once by one subscription, for prefetch checks. */
  readonly maxLocked = new Map<string, number>();

  constructor(options: ServiceBusDoubleOptions = {}) {
    this.lockDurationMs = options.lockDurationMs ?? 30_000;
  }

  record(op: string, entity: string, ...args: unknown[]): void {
    this.calls.push({ op, entity, args });
  }

  /** Recorded calls of one operation. */
  callsOf(op: string): RecordedCall[] {
    return this.calls.filter((call) => call.op === op);
  }

  subscription(topic: string, name: string): SubscriptionState {
    const state = this.topics.get(topic)?.get(name);
    if (!state) throw Object.assign(new Error(`The messaging entity '${topic}/Subscriptions/${name}' could not be found.`), { code: 'MessagingEntityNotFound' });
    return state;
  }

  /** A new client on this namespace (each broker of a test gets its own, like separate processes). */
  client(): ServiceBusClientLike {
    return new DoubleClient(this);
  }

  /** The administration client. */
  admin(): ServiceBusAdministrationLike {
    return new DoubleAdmin(this);
  }

  enqueue(topic: string, message: ServiceBusMessage): void {
    const subscriptions = this.topics.get(topic);
    if (!subscriptions) throw Object.assign(new Error(`The messaging entity '${topic}' could not be found.`), { code: 'MessagingEntityNotFound' });
    if (!(message.body instanceof Uint8Array)) throw new Error('double: the adapter must send Buffer bodies');
    const properties = { ...(message.applicationProperties ?? {}) };
    for (const state of subscriptions.values()) {
      if (!state.accepts(properties)) continue;
      state.active.push(this.store(message, properties));
      this.dispatch(state);
    }
  }

  store(message: ServiceBusMessage, properties: Record<string, ApplicationPropertyValue>): Stored {
    return {
      body: Buffer.from(message.body as Uint8Array),
      messageId: message.messageId === undefined ? undefined : String(message.messageId),
      contentType: message.contentType,
      correlationId: message.correlationId === undefined ? undefined : String(message.correlationId),
      subject: message.subject,
      partitionKey: message.partitionKey,
      sessionId: message.sessionId,
      applicationProperties: { ...properties },
      deliveryCount: 0,
      enqueuedTimeUtc: new Date(),
      sequenceNumber: ++this.#sequence,
    };
  }

  later(delayMs: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, Math.max(0, delayMs));
    this.timers.add(timer);
  }

  /** Hands queued messages to subscribed receivers with free capacity. */
  dispatch(state: SubscriptionState): void {
    for (const receiver of state.receivers) {
      while (state.active.length > 0 && receiver.hasCapacity) {
        const stored = state.active.shift()!;
        receiver.deliver(state, stored);
      }
    }
  }

  /** Puts a message back after abandon or lock expiry, or dead-letters it at maxDeliveryCount. */
  requeue(state: SubscriptionState, stored: Stored, propertiesToModify?: Record<string, ApplicationPropertyValue>): void {
    stored.deliveryCount++;
    if (propertiesToModify) Object.assign(stored.applicationProperties, propertiesToModify);
    if (stored.deliveryCount >= state.maxDeliveryCount) {
      this.deadLetter(state, stored, 'MaxDeliveryCountExceeded', `Message could not be consumed after ${state.maxDeliveryCount} delivery attempts.`, {});
      return;
    }
    state.active.unshift(stored);
    this.dispatch(state);
  }

  deadLetter(state: SubscriptionState, stored: Stored, reason: string, description: string, properties: Record<string, ApplicationPropertyValue>): void {
    Object.assign(stored.applicationProperties, properties, { DeadLetterReason: reason, DeadLetterErrorDescription: description });
    const forward = state.options.forwardDeadLetteredMessagesTo;
    if (forward) {
      this.enqueue(forward, { ...stored, body: stored.body, applicationProperties: stored.applicationProperties });
    } else {
      state.deadLetters.push(stored);
    }
  }

  lockCount(state: SubscriptionState): void {
    const key = `${state.topic}/${state.name}`;
    this.maxLocked.set(key, Math.max(this.maxLocked.get(key) ?? 0, state.locks.size));
  }

  /** Stops every timer (scheduled messages, lock expiries). */
  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const subscriptions of this.topics.values()) {
      for (const state of subscriptions.values()) for (const lock of state.locks.values()) clearTimeout(lock.timer);
    }
  }
}

class DoubleAdmin implements ServiceBusAdministrationLike {
  constructor(private readonly ns: ServiceBusDouble) {}

  async topicExists(topicName: string): Promise<boolean> {
    this.ns.record('topicExists', topicName);
    return this.ns.topics.has(topicName);
  }

  async createTopic(topicName: string, options?: CreateTopicOptions): Promise<unknown> {
    this.ns.record('createTopic', topicName, options);
    if (this.ns.topics.has(topicName)) throw Object.assign(new Error(`Entity '${topicName}' already exists.`), { code: 'MessagingEntityAlreadyExists', statusCode: 409 });
    this.ns.topics.set(topicName, new Map());
    return { name: topicName };
  }

  async subscriptionExists(topicName: string, subscriptionName: string): Promise<boolean> {
    this.ns.record('subscriptionExists', `${topicName}/${subscriptionName}`);
    return this.ns.topics.get(topicName)?.has(subscriptionName) ?? false;
  }

  async createSubscription(topicName: string, subscriptionName: string, options: CreateSubscriptionOptions = {}): Promise<unknown> {
    this.ns.record('createSubscription', `${topicName}/${subscriptionName}`, options);
    const topic = this.ns.topics.get(topicName);
    if (!topic) throw Object.assign(new Error(`Topic '${topicName}' not found.`), { code: 'MessagingEntityNotFound', statusCode: 404 });
    if (topic.has(subscriptionName)) throw Object.assign(new Error('exists'), { code: 'MessagingEntityAlreadyExists', statusCode: 409 });
    if (options.forwardDeadLetteredMessagesTo && !this.ns.topics.has(options.forwardDeadLetteredMessagesTo)) {
      throw Object.assign(new Error(`Forward target '${options.forwardDeadLetteredMessagesTo}' not found.`), { code: 'MessagingEntityNotFound', statusCode: 400 });
    }
    topic.set(subscriptionName, new SubscriptionState(topicName, subscriptionName, options));
    return { subscriptionName };
  }
}

class DoubleClient implements ServiceBusClientLike {
  #closed = false;

  constructor(private readonly ns: ServiceBusDouble) {}

  createSender(topicName: string): ServiceBusSenderLike {
    this.ns.record('createSender', topicName);
    return new DoubleSender(this.ns, topicName);
  }

  createReceiver(topicName: string, subscriptionName: string, options?: ServiceBusReceiverOptions): ServiceBusReceiverLike {
    this.ns.record('createReceiver', `${topicName}/${subscriptionName}`, options);
    return new DoubleReceiver(this.ns, this.ns.subscription(topicName, subscriptionName), options ?? {});
  }

  async close(): Promise<void> {
    this.ns.record('client.close', '');
    this.#closed = true;
  }

  get closed(): boolean {
    return this.#closed;
  }
}

class DoubleSender implements ServiceBusSenderLike {
  constructor(
    private readonly ns: ServiceBusDouble,
    private readonly topic: string,
  ) {}

  async sendMessages(messages: ServiceBusMessage | ServiceBusMessage[]): Promise<void> {
    this.ns.record('sendMessages', this.topic, messages);
    for (const message of Array.isArray(messages) ? messages : [messages]) this.ns.enqueue(this.topic, message);
  }

  async scheduleMessages(messages: ServiceBusMessage | ServiceBusMessage[], scheduledEnqueueTimeUtc: Date): Promise<unknown> {
    this.ns.record('scheduleMessages', this.topic, messages, scheduledEnqueueTimeUtc);
    if (!this.ns.topics.has(this.topic)) throw Object.assign(new Error(`The messaging entity '${this.topic}' could not be found.`), { code: 'MessagingEntityNotFound' });
    const list = Array.isArray(messages) ? messages : [messages];
    this.ns.later(scheduledEnqueueTimeUtc.getTime() - Date.now(), () => {
      for (const message of list) this.ns.enqueue(this.topic, message);
    });
    return list.map(() => 0);
  }

  async close(): Promise<void> {
    this.ns.record('sender.close', this.topic);
  }
}

class DoubleReceiver implements ServiceBusReceiverLike {
  #handlers: MessageHandlers | undefined;
  #maxConcurrentCalls = 1;
  #running = 0;
  #closed = false;
  readonly entity: string;

  constructor(
    private readonly ns: ServiceBusDouble,
    private readonly state: SubscriptionState,
    private readonly options: ServiceBusReceiverOptions,
  ) {
    this.entity = `${state.topic}/${state.name}`;
  }

  get hasCapacity(): boolean {
    return this.#handlers !== undefined && this.#running < this.#maxConcurrentCalls;
  }

  subscribe(handlers: MessageHandlers, options: SubscribeOptions = {}): { close(): Promise<void> } {
    this.ns.record('subscribe', this.entity, options);
    if (options.autoCompleteMessages !== false) throw new Error('double: the adapter must subscribe with autoCompleteMessages: false');
    this.#handlers = handlers;
    this.#maxConcurrentCalls = options.maxConcurrentCalls ?? 1;
    this.state.receivers.add(this);
    this.ns.dispatch(this.state);
    return {
      close: async () => {
        this.ns.record('subscription.close', this.entity);
        this.#handlers = undefined;
        this.state.receivers.delete(this);
      },
    };
  }

  deliver(state: SubscriptionState, stored: Stored): void {
    const lockToken = randomUUID();
    const lock: Lock = { stored, receiver: this, lockedAt: Date.now(), timer: undefined };
    state.locks.set(lockToken, lock);
    this.ns.lockCount(state);
    this.#armLock(lockToken, lock);
    const received = {
      body: this.options.skipParsingBodyAsJson ? stored.body : tryJson(stored.body as Buffer),
      messageId: stored.messageId,
      contentType: stored.contentType,
      correlationId: stored.correlationId,
      subject: stored.subject,
      partitionKey: stored.partitionKey,
      sessionId: stored.sessionId,
      applicationProperties: { ...stored.applicationProperties },
      deliveryCount: stored.deliveryCount,
      lockToken,
      enqueuedTimeUtc: stored.enqueuedTimeUtc,
      state: 'active',
      _rawAmqpMessage: {},
    } as unknown as ServiceBusReceivedMessage;
    this.#running++;
    const handlers = this.#handlers!;
    void Promise.resolve()
      .then(() => handlers.processMessage(received))
      .catch((error: Error) => handlers.processError({ error, errorSource: 'processMessageCallback', entityPath: this.entity, fullyQualifiedNamespace: 'double', identifier: 'double' }))
      .finally(() => {
        this.#running--;
        this.ns.dispatch(this.state);
      });
  }

  /** Lock expiry: renewed automatically while within maxAutoLockRenewalDurationInMs, else the message returns. */
  #armLock(lockToken: string, lock: Lock): void {
    const renewFor = this.options.maxAutoLockRenewalDurationInMs ?? 300_000;
    const expiresAt = Math.max(lock.lockedAt + this.ns.lockDurationMs, lock.lockedAt + renewFor);
    lock.timer = setTimeout(() => {
      if (this.state.locks.get(lockToken) !== lock) return;
      this.state.locks.delete(lockToken);
      this.ns.record('lockExpired', this.entity, lockToken);
      this.ns.requeue(this.state, lock.stored);
    }, expiresAt - Date.now());
    lock.timer.unref();
  }

  #take(op: string, message: ServiceBusReceivedMessage): Lock {
    if (this.#closed) throw Object.assign(new Error('The receiver has been closed and can no longer be used.'), { code: 'GeneralError' });
    const lock = message.lockToken ? this.state.locks.get(message.lockToken) : undefined;
    if (!lock) throw Object.assign(new Error(`${op}: the lock supplied is invalid (expired or already settled).`), { code: 'MessageLockLost' });
    clearTimeout(lock.timer);
    this.state.locks.delete(message.lockToken!);
    return lock;
  }

  async completeMessage(message: ServiceBusReceivedMessage): Promise<void> {
    this.ns.record('completeMessage', this.entity, message);
    this.#take('complete', message);
  }

  async abandonMessage(message: ServiceBusReceivedMessage, propertiesToModify?: Record<string, ApplicationPropertyValue>): Promise<void> {
    this.ns.record('abandonMessage', this.entity, message, propertiesToModify);
    const lock = this.#take('abandon', message);
    this.ns.requeue(this.state, lock.stored, propertiesToModify);
  }

  async deadLetterMessage(
    message: ServiceBusReceivedMessage,
    options?: { deadLetterReason: string; deadLetterErrorDescription: string } & Record<string, ApplicationPropertyValue>,
  ): Promise<void> {
    this.ns.record('deadLetterMessage', this.entity, message, options);
    const lock = this.#take('deadLetter', message);
    const { deadLetterReason, deadLetterErrorDescription, ...properties } = options ?? { deadLetterReason: '', deadLetterErrorDescription: '' };
    this.ns.deadLetter(this.state, lock.stored, deadLetterReason, deadLetterErrorDescription, properties);
  }

  async close(): Promise<void> {
    this.ns.record('receiver.close', this.entity);
    this.#closed = true;
    this.#handlers = undefined;
    this.state.receivers.delete(this);
    // Locks this receiver still holds expire later (lockDurationMs), as on the real broker.
    for (const [token, lock] of this.state.locks) {
      if (lock.receiver !== this) continue;
      clearTimeout(lock.timer);
      lock.timer = setTimeout(() => {
        if (this.state.locks.get(token) !== lock) return;
        this.state.locks.delete(token);
        this.ns.requeue(this.state, lock.stored);
      }, Math.min(this.ns.lockDurationMs, 1_000));
    }
  }
}

function tryJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return body;
  }
}

type Token = { kind: 'prop'; name: string } | { kind: 'str'; value: string } | { kind: 'word'; value: string } | { kind: 'op'; value: string };

/** Evaluates the SQL-filter subset with SQL's three-valued logic (a missing property is unknown). */
export function evaluateFilter(sql: string, properties: Readonly<Record<string, unknown>>): boolean {
  const tokens = tokenize(sql);
  let index = 0;
  const peek = (): Token | undefined => tokens[index];
  const next = (): Token => {
    const token = tokens[index++];
    if (!token) throw new Error(`double: unexpected end of filter ${sql}`);
    return token;
  };
  const isWord = (token: Token | undefined, word: string): boolean => token?.kind === 'word' && token.value === word;

  type Tri = boolean | undefined;
  const orExpr = (): Tri => {
    let value = andExpr();
    while (isWord(peek(), 'OR')) {
      next();
      const right = andExpr();
      value = value === true || right === true ? true : value === false && right === false ? false : undefined;
    }
    return value;
  };
  const andExpr = (): Tri => {
    let value = predicate();
    while (isWord(peek(), 'AND')) {
      next();
      const right = predicate();
      value = value === false || right === false ? false : value === true && right === true ? true : undefined;
    }
    return value;
  };
  const predicate = (): Tri => {
    const token = next();
    if (token.kind === 'op' && token.value === '(') {
      const value = orExpr();
      if (next().kind !== 'op') throw new Error('double: expected )');
      return value;
    }
    if (token.kind !== 'prop') throw new Error(`double: expected a property in ${sql}`);
    const actual = properties[token.name];
    const operator = next();
    if (isWord(operator, 'IS')) {
      let negate = false;
      if (isWord(peek(), 'NOT')) {
        next();
        negate = true;
      }
      if (!isWord(next(), 'NULL')) throw new Error('double: expected NULL');
      const isNull = actual === undefined || actual === null;
      return negate ? !isNull : isNull;
    }
    const literal = next();
    if (operator.kind !== 'op' || literal.kind !== 'str') throw new Error(`double: unsupported filter ${sql}`);
    if (actual === undefined || actual === null) return undefined;
    if (operator.value === '=') return String(actual) === literal.value;
    if (operator.value === '<>' || operator.value === '!=') return String(actual) !== literal.value;
    throw new Error(`double: unsupported operator ${operator.value}`);
  };
  const result = orExpr();
  if (index !== tokens.length) throw new Error(`double: trailing tokens in ${sql}`);
  return result === true;
}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const pattern = /\s*(?:\[([^\]]+)\]|'((?:[^']|'')*)'|(<>|!=|=|\(|\))|([A-Za-z]+))/y;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < sql.length && (match = pattern.exec(sql))) {
    if (match[1] !== undefined) tokens.push({ kind: 'prop', name: match[1] });
    else if (match[2] !== undefined) tokens.push({ kind: 'str', value: match[2].replace(/''/g, "'") });
    else if (match[3] !== undefined) tokens.push({ kind: 'op', value: match[3] });
    else tokens.push({ kind: 'word', value: match[4]!.toUpperCase() });
  }
  if (pattern.lastIndex < sql.trimEnd().length) throw new Error(`double: cannot parse filter ${sql}`);
  return tokens;
}
