/**
 * The brokerless ZeroMQ adapter beyond the conformance suite: a publisher broker with consumer
 * brokers in one process, interop with plain zeromq code both ways, the bounded group buffer, a
 * publisher restart, and the fault test — a consumer process killed with SIGKILL while it holds
 * unacknowledged deliveries, which then go to another member of its group.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import { ZeroMqAdapter } from '../../adapters/zeromq/ZeroMqAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { PublishError } from '../../runtime/errors.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { waitFor } from '../conformance/waitFor.js';

const CHILD = fileURLToPath(new URL('./holdingConsumer.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function open(options: ConstructorParameters<typeof ZeroMqAdapter>[0]): Promise<{ broker: Broker; adapter: ZeroMqAdapter }> {
  const adapter = new ZeroMqAdapter(options);
  const broker = new Broker(adapter, { logger: silentLogger, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
  await broker.init();
  cleanup.push(() => broker.close({ drainTimeoutMs: 500 }));
  return { broker, adapter };
}

function plainDealer(endpoint: string): Dealer {
  const dealer = new Dealer({ linger: 0 });
  dealer.connect(endpoint);
  cleanup.push(() => dealer.close());
  return dealer;
}

describe('zeromq adapter', () => {
  it('a publisher broker and consumer brokers in one process: every group gets every message, one member per group each', async () => {
    const { broker: publisher, adapter } = await open({ bind: 'tcp://127.0.0.1:*' });
    const peers = [await open({ connect: adapter.endpoint! }), await open({ connect: adapter.endpoint! })];
    const billing = [new Set<number>(), new Set<number>(), new Set<number>()];
    const shipping = new Set<number>();
    // billing: one member in the publisher's own process and one in each peer; shipping: one peer.
    await publisher.subscribe<{ i: number }>('orders', (m) => void billing[0]!.add(m.body.i), 'billing', { ensure: true });
    for (const [index, peer] of peers.entries()) {
      await peer.broker.subscribe<{ i: number }>('orders', (m) => void billing[index + 1]!.add(m.body.i), 'billing', { ensure: true });
    }
    await peers[0]!.broker.subscribe<{ i: number }>('orders', (m) => void shipping.add(m.body.i), 'shipping', { ensure: true });

    for (let i = 0; i < 300; i++) await publisher.publish('orders', { body: { i } });
    await waitFor(() => billing.reduce((sum, set) => sum + set.size, 0) >= 300 && shipping.size >= 300, 10_000, 'all messages in both groups');
    const all = billing.flatMap((set) => [...set]);
    expect(new Set(all).size).toBe(300);
    expect(all).toHaveLength(300);
    expect(billing.every((set) => set.size > 0), `shared: ${billing.map((set) => set.size).join(', ')}`).toBe(true);
    expect(shipping.size).toBe(300);
  });

  it('plain zeromq code publishes the documented frames and an OmniQueue handler reads them', async () => {
    const { adapter } = await open({ bind: 'tcp://127.0.0.1:*' });
    const { broker } = await open({ connect: adapter.endpoint! });
    const received: Message[] = [];
    await broker.subscribe('legacy', (m) => void received.push(m), 'readers', { ensure: true });

    const dealer = plainDealer(adapter.endpoint!);
    await dealer.send(['legacy', JSON.stringify({ 'x-source': 'plain-zmq', 'omniqueue-key': 'k1' }), Buffer.from(JSON.stringify({ hello: 'zmq' })), 't1']);
    const [status, tag] = await dealer.receive();
    expect([status!.toString(), tag!.toString()]).toEqual(['$OK', 't1']);
    // Without a tag: fire and forget, no answer.
    await dealer.send(['legacy', '{}', Buffer.from('[1,2,3]')]);

    await waitFor(() => received.length >= 2, 10_000, 'both plain messages');
    const first = received.find((m) => m.headers['x-source'] === 'plain-zmq')!;
    expect(first.body).toEqual({ hello: 'zmq' });
    expect(first.key).toBe('k1');
    expect(first.attempt).toBe(1);
    expect(first.id.length).toBeGreaterThan(0);
    expect(received.map((m) => m.body)).toContainEqual([1, 2, 3]);
  });

  it('plain zeromq code joins a group, reads OmniQueue messages and acks or nacks them', async () => {
    const { broker: publisher, adapter } = await open({ bind: 'tcp://127.0.0.1:*' });
    const dealer = plainDealer(adapter.endpoint!);
    await dealer.send(['$SUB', 's1', 'plain-consumer-1', 'invoices', 'plain', '10']);
    const [ok, tag] = await dealer.receive();
    expect([ok!.toString(), tag!.toString()]).toEqual(['$OK', 's1']);

    const { id } = await publisher.publish('invoices', { body: { total: 12.5 }, key: 'cust-1', headers: { 'x-tenant': 'acme' } });
    const [topic, headersFrame, payload, consumerId, deliveryTag] = await dealer.receive();
    const headers = JSON.parse(headersFrame!.toString()) as Record<string, string>;
    expect(topic!.toString()).toBe('invoices');
    expect(JSON.parse(payload!.toString())).toEqual({ total: 12.5 });
    expect(headers).toMatchObject({ 'omniqueue-id': id, 'omniqueue-attempt': '1', 'omniqueue-key': 'cust-1', 'x-tenant': 'acme', 'content-type': 'application/json' });
    expect(consumerId!.toString()).toBe('plain-consumer-1');

    // A nack makes the publisher send it again with attempt 2; then an ack settles it.
    await dealer.send(['$NACK', 'plain-consumer-1', deliveryTag!, '0']);
    const again = await dealer.receive();
    expect(JSON.parse(again[1]!.toString())['omniqueue-attempt']).toBe('2');
    await dealer.send(['$ACK', 'plain-consumer-1', again[4]!]);
    await waitFor(() => adapter.depth('invoices', 'plain') === 0, 2_000, 'nothing waiting');
  });

  it('a group without a member holds messages up to maxBuffered; past it publish rejects with PublishError', async () => {
    const { broker: publisher, adapter } = await open({ bind: 'tcp://127.0.0.1:*', maxBuffered: 5 });
    await adapter.ensure({ topic: 'bounded', group: 'late' });
    // A topic with no group at all takes nothing: nobody would ever read it.
    await publisher.publish('nobody-listens', { body: 1 });
    for (let i = 0; i < 5; i++) await publisher.publish('bounded', { body: { i } });
    await expect(publisher.publish('bounded', { body: { i: 5 } })).rejects.toBeInstanceOf(PublishError);
    expect(adapter.depth('bounded', 'late')).toBe(5);

    const { broker: peer } = await open({ connect: adapter.endpoint! });
    // Forwarded publishes from a peer are refused the same way.
    await expect(peer.publish('bounded', { body: { i: 6 } })).rejects.toBeInstanceOf(PublishError);
    const got: number[] = [];
    await peer.subscribe<{ i: number }>('bounded', (m) => void got.push(m.body.i), 'late');
    await waitFor(() => got.length >= 5, 5_000, 'the buffered messages');
    expect(got.sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('after a publisher restart on the same endpoint, peers announce their members again', async () => {
    const first = new ZeroMqAdapter({ bind: 'tcp://127.0.0.1:*', heartbeatIntervalMs: 100 });
    await first.connect();
    const endpoint = first.endpoint!;
    const { broker: peer } = await open({ connect: endpoint, heartbeatIntervalMs: 100 });
    const got: string[] = [];
    await peer.subscribe<string>('restart', (m) => void got.push(m.body), 'g', { ensure: true });
    await peer.publish('restart', { body: 'before' });
    await waitFor(() => got.includes('before'), 5_000, 'before');

    await first.close();
    const second = new ZeroMqAdapter({ bind: endpoint, heartbeatIntervalMs: 100 });
    await second.connect();
    // Closed after the peer (cleanup runs in reverse), so the peer's $CLOSE is answered.
    cleanup.unshift(() => second.close());
    // The peer's ping makes the new publisher answer $UNKNOWN; the peer announces its member again,
    // which creates the group on the new publisher.
    await waitFor(() => second.memberCount('restart', 'g') === 1, 5_000, 'the member announced again');
    await second.send({ id: 'after-1', topic: 'restart', key: undefined, headers: { 'content-type': 'application/json' }, payload: new TextEncoder().encode('"after"'), body: 'after', publishedAt: Date.now(), delayMs: 0 });
    await waitFor(() => got.includes('after'), 5_000, 'after');
  });

  it('SIGKILL of a consumer process: its unacked deliveries go to another member of the group', async () => {
    const { broker: publisher, adapter } = await open({ bind: 'tcp://127.0.0.1:*', heartbeatIntervalMs: 100, peerTimeoutMs: 1_000 });
    await adapter.ensure({ topic: 'jobs', group: 'workers' });
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, adapter.endpoint!, 'jobs', 'workers', '5'], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(() => void child.kill('SIGKILL'));
    const held: { id: string; attempt: number }[] = [];
    let ready = false;
    createInterface({ input: child.stdout }).on('line', (line) => {
      const event = JSON.parse(line) as { ready?: true; id?: string; attempt?: number };
      if (event.ready) ready = true;
      else held.push({ id: event.id!, attempt: event.attempt! });
    });
    await waitFor(() => ready, 20_000, 'the child consumer');

    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await publisher.publish('jobs', { body: { job: i } })).id);
    await waitFor(() => held.length >= 5, 10_000, () => `the child holding 5 deliveries, has ${held.length}`);
    expect(held.map((h) => h.id).sort()).toEqual([...ids].sort());

    // A second member joins (it gets nothing while the child holds everything), then the child dies.
    const { broker: survivor } = await open({ connect: adapter.endpoint!, heartbeatIntervalMs: 100 });
    const redelivered: Message[] = [];
    await survivor.subscribe('jobs', (m) => void redelivered.push(m), 'workers');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    await waitFor(() => redelivered.length >= 5, 10_000, () => `the 5 held messages at the survivor, got ${redelivered.length}`);
    expect(redelivered.map((m) => m.id).sort()).toEqual([...ids].sort());
    expect(redelivered.every((m) => m.attempt === 2)).toBe(true);
  });
});
