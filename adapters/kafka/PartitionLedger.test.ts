import { describe, expect, it } from 'vitest';
import { PartitionLedger } from './PartitionLedger.js';

describe('PartitionLedger', () => {
  it('commits only the contiguous settled run, whatever the settlement order', () => {
    const ledger = new PartitionLedger();
    const t5 = ledger.track(5);
    const t6 = ledger.track(6);
    const t7 = ledger.track(7);
    expect(ledger.settle(t7)).toBeUndefined();
    expect(ledger.committable).toBeUndefined();
    expect(ledger.settle(t5)).toBe(6);
    expect(ledger.settle(t6)).toBe(8);
    expect(ledger.tracked).toBe(0);
    expect(ledger.nextFetch).toBe(8);
  });

  it('never moves past an open delivery, and a second settlement changes nothing', () => {
    const ledger = new PartitionLedger();
    const open = ledger.track(10);
    const tokens = [11, 12, 13].map((offset) => ledger.track(offset));
    for (const token of tokens) expect(ledger.settle(token)).toBeUndefined();
    expect(ledger.committable).toBeUndefined();
    expect(ledger.settle(tokens[0]!)).toBeUndefined();
    expect(ledger.settle(open)).toBe(14);
    expect(ledger.settle(open)).toBeUndefined();
  });

  it('handles offset gaps (compaction, transaction markers) and long runs', () => {
    const ledger = new PartitionLedger();
    const tokens: number[] = [];
    for (let offset = 0; offset < 10_000; offset += 3) tokens.push(ledger.track(offset));
    // settle in reverse: nothing commits until the first one
    for (let i = tokens.length - 1; i > 0; i--) expect(ledger.settle(tokens[i]!)).toBeUndefined();
    expect(ledger.settle(tokens[0]!)).toBe(9_999 + 1);
    const later = ledger.track(20_000);
    expect(ledger.settle(later)).toBe(20_001);
  });

  it('starts after a seek position and ignores older offsets', () => {
    const ledger = new PartitionLedger(42);
    expect(ledger.accepts(41)).toBe(false);
    expect(ledger.accepts(42)).toBe(true);
    expect(ledger.settle(ledger.track(42))).toBe(43);
  });

  it('compacts while one old delivery stays open', () => {
    const ledger = new PartitionLedger();
    const first = ledger.track(0);
    let settledHead: number | undefined;
    for (let offset = 1; offset < 5_000; offset++) {
      const token = ledger.track(offset);
      expect(ledger.settle(token)).toBeUndefined();
    }
    settledHead = ledger.settle(first);
    expect(settledHead).toBe(5_000);
    for (let offset = 5_000; offset < 8_000; offset++) expect(ledger.settle(ledger.track(offset))).toBe(offset + 1);
  });
});
