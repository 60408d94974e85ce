/**
 * The Redis Streams adapter. Importing this module registers it as `redis-streams`.
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { RedisStreamsAdapter, type RedisStreamsAdapterOptions } from './RedisStreamsAdapter.js';

export {
  RedisStreamsAdapter,
  REDIS_STREAMS_FEATURES,
  REDIS_MAX_BULK_BYTES,
  type RedisStreamsAdapterOptions,
  type RedisStreamsRetention,
} from './RedisStreamsAdapter.js';
export { BODY_FIELD, KEY_FIELD, type StreamEntry } from './streamEntry.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    'redis-streams': RedisStreamsAdapterOptions;
  }
}

register('redis-streams', (config) => new RedisStreamsAdapter(config));
