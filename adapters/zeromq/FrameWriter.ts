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
  readonly #queue: Frames[] = [];
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
    if (!this.#busy && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #flush(): Promise<void> {
    this.#busy = true;
    while (this.#queue.length > 0) {
      const frames = this.#queue.shift()!;
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
