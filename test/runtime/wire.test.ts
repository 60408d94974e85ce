import { describe, expect, it } from 'vitest';
import { DecodeError, InvalidMessageError } from '../../runtime/errors.js';
import { decodePayload, encodeBody, normaliseHeaders, userHeaders } from '../../runtime/wire.js';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('wire format', () => {
  it('encodes JSON bodies as JSON bytes and bytes as octet-stream', () => {
    const json = encodeBody({ orderId: 'A1', total: 3 });
    expect(json.contentType).toBe('application/json');
    expect(new TextDecoder().decode(json.payload)).toBe('{"orderId":"A1","total":3}');
    const raw = encodeBody(new Uint8Array([0, 255]));
    expect(raw.contentType).toBe('application/octet-stream');
    expect([...raw.payload]).toEqual([0, 255]);
  });

  it('refuses bodies that are not JSON-serialisable', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeBody(cyclic)).toThrow(InvalidMessageError);
    expect(() => encodeBody(undefined)).toThrow(InvalidMessageError);
    expect(() => encodeBody(10n)).toThrow(InvalidMessageError);
  });

  it('decodes by content type', () => {
    expect(decodePayload(bytes('{"a":1}'), undefined)).toEqual({ a: 1 });
    expect(decodePayload('{"a":1}', 'application/cloudevents+json; charset=utf-8')).toEqual({ a: 1 });
    expect(decodePayload(bytes('hello'), 'text/plain')).toBe('hello');
    expect(decodePayload(bytes('\u0001'), 'application/x-protobuf')).toBeInstanceOf(Uint8Array);
  });

  it('turns invalid JSON into a DecodeError, never a crash', () => {
    expect(() => decodePayload(bytes('not json{'), 'application/json')).toThrow(DecodeError);
    expect(() => decodePayload(new Uint8Array([0xff, 0xfe]), undefined)).toThrow(DecodeError);
  });

  it('normalises headers and guards the reserved prefix', () => {
    expect(normaliseHeaders({ a: 'x', n: 3, b: true, skip: undefined })).toEqual({ a: 'x', n: '3', b: 'true' });
    expect(() => normaliseHeaders({ 'omniqueue-id': 'x' })).toThrow(/reserved/);
    expect(() => normaliseHeaders({ obj: {} as unknown as string })).toThrow(InvalidMessageError);
  });

  it('hides transport metadata from handlers but keeps dead-letter headers', () => {
    expect(userHeaders({ 'omniqueue-id': '1', 'omniqueue-attempt': '2', 'omniqueue-dlq-reason': 'r', 'x-tenant': 't' })).toEqual({
      'omniqueue-dlq-reason': 'r',
      'x-tenant': 't',
    });
  });
});
