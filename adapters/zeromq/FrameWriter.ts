import type { Frames } from './protocol.js';

/** The part of a zeromq socket a {@link FrameWriter} needs. */
export interface SendingSocket {
  send(message: Frames): Promise<void>;
}

/**
 * Serialises sends on one zeromq socket: zeromq v6 allows only one pending `send()` per socket, so
 * every writer of the socket goes through this queue. A send that fails is reported to `onError`
 * with its frames; the queue goes on with the next one.
 */
export class FrameWriter {
  #queue: Frames[] = [];
  /** Index of the next message to send: `shift()` moves the whole array each time once it is long. */
  #head = 0;
  #busy = false;
  #idle: (() => void)[] = [];

  constructor(
    private readonly socket: SendingSocket,
    private readonly onError: (error: unknown, frames: Frames) => void,
  ) {}

  /** Queues one multipart message. */
  write(frames: Frames): void {
    this.#queue.push(frames);
    if (!this.#busy) void this.#flush();
  }

  /** Resolves once everything queued so far was handed to the socket. */
  drained(): Promise<void> {
    if (!this.#busy && this.#head === this.#queue.length) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #flush(): Promise<void> {
    this.#busy = true;
    while (this.#head < this.#queue.length) {
      const frames = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Frames;
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
      } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      try {
        await this.socket.send(frames);
      } catch (error) {
        this.onError(error, frames);
      }
    }
    this.#busy = false;
    const waiting = this.#idle;
    this.#idle = [];
    for (const resolve of waiting) resolve();
  }
}
