import { afterEach, describe, expect, it } from 'vitest';
import { MemoryAdapter } from '../../adapters/memory/MemoryAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { ClosedError, InvalidMessageError, TimeoutError } from '../../runtime/errors.js';
import { silentLogger } from '../../runtime/Logger.js';

const brokers: Broker[] = [];

async function broker(namespace: string): Promise<Broker> {
  const created = new Broker(new MemoryAdapter({ namespace }), { logger: silentLogger });
  await created.init();
  brokers.push(created);
  return created;
}

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.close()));
});

describe('request–reply', () => {
  it('a responder in another broker answers each request with its own correlation', async () => {
    const namespace = `rr-${Math.random()}`;
    const client = await broker(namespace);
    const server = await broker(namespace);
    await server.subscribe<{ n: number }>('math.square', async (msg) => {
      await server.reply(msg, { body: { result: msg.body.n * msg.body.n } });
    }, 'math', { ensure: true });

    const replies = await Promise.all([3, 4, 5].map((n) => client.request<{ result: number }>('math.square', { body: { n } })));
    expect(replies.map((reply) => reply.body.result)).toEqual([9, 16, 25]);
  });

  it('times out with a typed error when nobody answers', async () => {
    const client = await broker(`rr-${Math.random()}`);
    await expect(client.request('nobody.home', { body: {} }, { timeoutMs: 50 })).rejects.toBeInstanceOf(TimeoutError);
  });

  it('refuses to reply to a message that asked for none, and fails waiting requests on close', async () => {
    const namespace = `rr-${Math.random()}`;
    const client = await broker(namespace);
    const server = await broker(namespace);
    let refusal: unknown;
    await server.subscribe('plain', async (msg) => {
      refusal = await server.reply(msg, { body: 1 }).catch((error: unknown) => error);
    }, 'g', { ensure: true });
    await client.publish('plain', { body: {} });
    await expect.poll(() => refusal).toBeInstanceOf(InvalidMessageError);

    const waiting = client.request('slow', { body: {} }, { timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 10));
    await client.close();
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('init', () => {
  it('can be called again after the adapter failed to connect', async () => {
    let attempts = 0;
    class FlakyAdapter extends MemoryAdapter {
      override async connect(): Promise<void> {
        if (++attempts === 1) throw new Error('broker not up yet');
        await super.connect();
      }
    }
    const broker = new Broker(new FlakyAdapter(), { logger: silentLogger });
    await expect(broker.init()).rejects.toThrow('broker not up yet');
    await expect(broker.publish('t', { body: 1 })).rejects.toThrow(/before init/);
    await broker.init();
    expect(attempts).toBe(2);
    await broker.close();
  });
});
