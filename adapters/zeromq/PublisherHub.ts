import { randomBytes, randomUUID } from 'node:crypto';
import { Router } from 'zeromq';
import { OmniQueueError, PublishError } from '../../runtime/errors.js';
import { validateName } from '../../runtime/validateName.js';
import { WireHeader } from '../../runtime/wire.js';
import { FrameWriter } from './FrameWriter.js';
import { Command, isCommand, KEY_HEADER, parseHeaders, text, type Frames } from './protocol.js';

/** One message as the publisher holds it for one group. */
export interface HubEntry {
  readonly topic: string;
  /** Headers as published (with `omniqueue-id`, `omniqueue-published-at` and the key filled in). */
  readonly headers: Readonly<Record<string, string>>;
  readonly payload: Uint8Array;
  attempt: number;
}

/** Where a member's deliveries go: an in-process listener or a remote peer. */
export interface MemberSink {
  /** Hands one delivery over. */
  deliver(member: Member, tag: string, entry: HubEntry): void;
}

/** Settings of a {@link PublisherHub}. */
export interface PublisherHubOptions {
  /** Most messages waiting in one group's buffer; a publish past it rejects with `PublishError`. */
  readonly maxBuffered: number;
  /** How often the publisher checks peer liveness. */
  readonly heartbeatIntervalMs: number;
  /** A peer silent this long is gone: its unsettled deliveries go to other members. */
  readonly peerTimeoutMs: number;
}

/** A member of a group: one consumption, local or remote. */
export class Member {
  readonly inflight = new Map<string, HubEntry>();
  stopped = false;

  constructor(
    readonly id: string,
    readonly group: Group,
    readonly prefetch: number,
    readonly sink: MemberSink,
    readonly peer: RemotePeer | undefined,
  ) {}

  get hasCredit(): boolean {
    return !this.stopped && this.inflight.size < this.prefetch;
  }
}

/** A group on the publisher: its buffer and its members, served round-robin with credit. */
export class Group {
  #buffer: HubEntry[] = [];
  #head = 0;
  #next = 0;
  #dispatching = false;
  readonly members: Member[] = [];

  constructor(
    readonly name: string,
    private readonly hub: PublisherHub,
  ) {}

  /** Messages waiting (not handed out). */
  get depth(): number {
    return this.#buffer.length - this.#head;
  }

  enqueue(entry: HubEntry, front = false): void {
    if (front) {
      this.#compact(true);
      this.#buffer.unshift(entry);
    } else {
      this.#buffer.push(entry);
    }
    this.dispatch();
  }

  dispatch(): void {
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      while (this.#head < this.#buffer.length) {
        const member = this.#pick();
        if (!member) break;
        const entry = this.#buffer[this.#head]!;
        this.#buffer[this.#head++] = undefined as unknown as HubEntry;
        this.hub.handOut(member, entry);
      }
      this.#compact(false);
    } finally {
      this.#dispatching = false;
    }
  }

  #pick(): Member | undefined {
    const count = this.members.length;
    for (let i = 0; i < count; i++) {
      const member = this.members[(this.#next + i) % count]!;
      if (member.hasCredit) {
        this.#next = (this.#next + i + 1) % count;
        return member;
      }
    }
    return undefined;
  }

  #compact(force: boolean): void {
    if (this.#head === 0) return;
    if (this.#head === this.#buffer.length) {
      this.#buffer = [];
      this.#head = 0;
    } else if (force || (this.#head > 4096 && this.#head * 2 > this.#buffer.length)) {
      this.#buffer = this.#buffer.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** A connected DEALER peer, known by its routing id. */
export class RemotePeer implements MemberSink {
  lastSeen = Date.now();
  readonly members = new Set<Member>();

  constructor(
    readonly identity: Uint8Array,
    private readonly writer: FrameWriter,
  ) {}

  deliver(member: Member, tag: string, entry: HubEntry): void {
    const headers = { ...entry.headers, [WireHeader.Attempt]: String(entry.attempt) };
    this.writer.write([this.identity, entry.topic, JSON.stringify(headers), entry.payload, member.id, tag]);
  }

  reply(frames: Frames): void {
    this.writer.write([this.identity, ...frames]);
  }
}

const encoder = new TextEncoder();

/**
 * The publisher side of the brokerless adapter: a ROUTER socket bound to an endpoint, the groups of
 * every topic with their bounded buffers, and the members (local consumptions and remote DEALER
 * peers) each group hands messages to. Everything lives in this process: when it ends, whatever it
 * held is gone.
 */
export class PublisherHub {
  readonly #options: PublisherHubOptions;
  readonly #topics = new Map<string, Map<string, Group>>();
  readonly #members = new Map<string, Member>();
  readonly #peers = new Map<string, RemotePeer>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #epoch = randomBytes(4).toString('hex');
  #seq = 0;
  #router: Router | undefined;
  #writer: FrameWriter | undefined;
  #liveness: NodeJS.Timeout | undefined;
  #receiving: Promise<void> | undefined;
  #endpoint: string | undefined;

  constructor(options: PublisherHubOptions) {
    this.#options = options;
  }

  /** The endpoint the ROUTER listens on (with the real port when bound to `*`). */
  get endpoint(): string | undefined {
    return this.#endpoint;
  }

  /** Binds the ROUTER socket and starts serving peers. */
  async bind(endpoint: string): Promise<void> {
    const router = new Router({ mandatory: true, sendHighWaterMark: 0, receiveHighWaterMark: 0, sendTimeout: 0, linger: 0 });
    await router.bind(endpoint);
    this.#router = router;
    this.#endpoint = router.lastEndpoint ?? endpoint;
    this.#writer = new FrameWriter(router, (_error, frames) => this.#unreachable(frames[0]));
    this.#receiving = this.#receive(router);
    this.#liveness = setInterval(() => this.#expirePeers(), this.#options.heartbeatIntervalMs);
    this.#liveness.unref();
  }

  /** The group `group` of `topic`, created when missing. */
  group(topic: string, group: string): Group {
    let groups = this.#topics.get(topic);
    if (!groups) {
      groups = new Map();
      this.#topics.set(topic, groups);
    }
    let found = groups.get(group);
    if (!found) {
      found = new Group(group, this);
      groups.set(group, found);
    }
    return found;
  }

  /** Messages waiting in a group's buffer (not counting those handed out). */
  depth(topic: string, group: string): number {
    return this.#topics.get(topic)?.get(group)?.depth ?? 0;
  }

  /** Members currently receiving from a group. */
  memberCount(topic: string, group: string): number {
    return this.#topics.get(topic)?.get(group)?.members.length ?? 0;
  }

  /**
   * Hands a message to every group of its topic (after `delayMs`). Throws `PublishError` when a
   * group's buffer is full: then no group gets it.
   */
  publish(topic: string, headers: Record<string, string>, payload: Uint8Array, delayMs: number): void {
    const groups = this.#topics.get(topic);
    if (!groups || groups.size === 0) return;
    for (const group of groups.values()) {
      if (group.depth >= this.#options.maxBuffered) {
        throw new PublishError(
          `ZeroMQ publisher: group '${group.name}' of topic '${topic}' already holds ${group.depth} undelivered messages (maxBuffered ${this.#options.maxBuffered}); the message was not taken.`,
        );
      }
    }
    headers[WireHeader.Id] ??= randomUUID();
    headers[WireHeader.PublishedAt] ??= String(Date.now());
    const targets = [...groups.values()];
    const enqueue = (): void => {
      for (const group of targets) group.enqueue({ topic, headers, payload, attempt: 1 });
    };
    if (delayMs > 0) this.#later(delayMs, enqueue);
    else enqueue();
  }

  /** Adds a member to a group (or re-activates a known one) and starts dispatching to it. */
  join(id: string, topic: string, groupName: string, prefetch: number, sink: MemberSink, peer?: RemotePeer): Member {
    let member = this.#members.get(id);
    if (!member) {
      member = new Member(id, this.group(topic, groupName), Math.max(1, prefetch), sink, peer);
      this.#members.set(id, member);
      member.group.members.push(member);
      peer?.members.add(member);
    }
    member.group.dispatch();
    return member;
  }

  /** Is this member known? */
  knows(id: string): boolean {
    return this.#members.has(id);
  }

  /** Called by a group: records the delivery and sends it to the member. */
  handOut(member: Member, entry: HubEntry): void {
    const tag = `${this.#epoch}.${(++this.#seq).toString(36)}`;
    member.inflight.set(tag, entry);
    member.sink.deliver(member, tag, entry);
  }

  /** Settles one delivery: `nackDelayMs` undefined acks, a number makes it available again after that delay. */
  settle(memberId: string, tag: string, nackDelayMs: number | undefined, peer?: RemotePeer): void {
    const member = this.#members.get(memberId);
    if (!member || (peer !== undefined && member.peer !== peer)) return;
    const entry = member.inflight.get(tag);
    if (!entry) return;
    member.inflight.delete(tag);
    if (nackDelayMs !== undefined) {
      entry.attempt++;
      if (nackDelayMs > 0) this.#later(nackDelayMs, () => member.group.enqueue(entry));
      else member.group.enqueue(entry);
    }
    if (!member.stopped) member.group.dispatch();
  }

  /** Stops new deliveries to a member; its unsettled ones stay settleable. */
  stop(memberId: string): void {
    const member = this.#members.get(memberId);
    if (!member || member.stopped) return;
    member.stopped = true;
    const index = member.group.members.indexOf(member);
    if (index >= 0) member.group.members.splice(index, 1);
  }

  /** Removes a member; its unsettled deliveries go back to the front of the group (attempt + 1). */
  leave(memberId: string): void {
    const member = this.#members.get(memberId);
    if (!member) return;
    this.stop(memberId);
    this.#members.delete(memberId);
    member.peer?.members.delete(member);
    const returned = [...member.inflight.values()].reverse();
    member.inflight.clear();
    for (const entry of returned) {
      entry.attempt++;
      member.group.enqueue(entry, true);
    }
  }

  /** Stops serving: closes the socket and forgets every timer. Unsettled messages are lost with the process. */
  async close(): Promise<void> {
    if (this.#liveness) clearInterval(this.#liveness);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (this.#writer) await this.#writer.drained();
    this.#router?.close();
    await this.#receiving?.catch(() => {});
  }

  #later(delayMs: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, delayMs);
    this.#timers.add(timer);
  }

  async #receive(router: Router): Promise<void> {
    // receive() directly rather than the socket's async iterator: one promise per message less.
    while (!router.closed) {
      let message: Buffer[];
      try {
        message = await router.receive();
      } catch (error) {
        if (router.closed) return;
        throw error;
      }
      const [identity, ...frames] = message;
      if (identity === undefined) continue;
      try {
        this.#handle(identity, frames);
      } catch {
        // A malformed frame from one peer never stops the publisher.
      }
    }
  }

  #peer(identity: Uint8Array): RemotePeer {
    const key = Buffer.from(identity).toString('hex');
    let peer = this.#peers.get(key);
    if (!peer) {
      peer = new RemotePeer(identity, this.#writer!);
      this.#peers.set(key, peer);
    }
    peer.lastSeen = Date.now();
    return peer;
  }

  #handle(identity: Uint8Array, frames: Buffer[]): void {
    const peer = this.#peer(identity);
    if (!isCommand(frames[0])) {
      this.#publishFrames(peer, frames);
      return;
    }
    const command = text(frames[0]);
    switch (command) {
      case Command.Ack: {
        const memberId = text(frames[1]);
        for (const tag of frames.slice(2)) this.settle(memberId, text(tag), undefined, peer);
        return;
      }
      case Command.Nack:
        this.settle(text(frames[1]), text(frames[2]), Math.max(0, Number(text(frames[3])) || 0), peer);
        return;
      case Command.Ping: {
        peer.reply([Command.Pong]);
        for (const frame of frames.slice(1)) {
          const id = text(frame);
          if (!this.#members.has(id)) peer.reply([Command.Unknown, id]);
        }
        return;
      }
      case Command.Subscribe: {
        const tag = text(frames[1]);
        try {
          const topic = validateName('topic', text(frames[3]));
          const group = validateName('group', text(frames[4]));
          this.join(text(frames[2]), topic, group, Number(text(frames[5])) || 1, peer, peer);
          peer.reply([Command.Ok, tag]);
        } catch (error) {
          peer.reply(errorFrames(tag, error));
        }
        return;
      }
      case Command.Stop:
        this.stop(text(frames[2]));
        peer.reply([Command.Ok, text(frames[1])]);
        return;
      case Command.Close:
        this.leave(text(frames[2]));
        peer.reply([Command.Ok, text(frames[1])]);
        return;
      case Command.Ensure: {
        const tag = text(frames[1]);
        try {
          const topic = validateName('topic', text(frames[2]));
          if (frames[3] !== undefined && frames[3].length > 0) this.group(topic, validateName('group', text(frames[3])));
          else this.#topics.has(topic) || this.#topics.set(topic, new Map());
          peer.reply([Command.Ok, tag]);
        } catch (error) {
          peer.reply(errorFrames(tag, error));
        }
        return;
      }
      default:
        return;
    }
  }

  #publishFrames(peer: RemotePeer, frames: Buffer[]): void {
    const tag = frames[3] === undefined ? undefined : text(frames[3]);
    try {
      const topic = validateName('topic', text(frames[0]));
      const headers = parseHeaders(frames[1]);
      this.publish(topic, headers, frames[2] ?? new Uint8Array(0), Math.max(0, Number(text(frames[4])) || 0));
      if (tag !== undefined) peer.reply([Command.Ok, tag]);
    } catch (error) {
      if (tag !== undefined) peer.reply(errorFrames(tag, error));
    }
  }

  #unreachable(identity: string | Uint8Array | undefined): void {
    if (identity === undefined) return;
    const key = Buffer.from(typeof identity === 'string' ? encoder.encode(identity) : identity).toString('hex');
    const peer = this.#peers.get(key);
    if (peer) this.#dropPeer(key, peer);
  }

  #expirePeers(): void {
    const oldest = Date.now() - this.#options.peerTimeoutMs;
    for (const [key, peer] of this.#peers) {
      if (peer.lastSeen < oldest) this.#dropPeer(key, peer);
    }
  }

  #dropPeer(key: string, peer: RemotePeer): void {
    this.#peers.delete(key);
    for (const member of [...peer.members]) this.leave(member.id);
  }
}

function errorFrames(tag: string, error: unknown): Frames {
  const code = error instanceof OmniQueueError ? error.code : 'PUBLISH';
  return [Command.Error, tag, code, error instanceof Error ? error.message : String(error)];
}
