/**
 * Conformance runner for the Kafka adapter against the real single-node Kafka of
 * `test/brokers/kafka.sh`. The foreign producer is plain kafkajs: raw bytes and native headers, no
 * OmniQueue metadata.
 */
import kafkajs from 'kafkajs';
import { afterAll, describe } from 'vitest';
import { KAFKA_FEATURES, KafkaAdapter } from '../../adapters/kafka/KafkaAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { KAFKA_BROKERS, kafkaAvailable, runKafkaScript } from '../brokers/kafka.js';
import { runConformance } from './runConformance.js';

const available = await kafkaAvailable();

const { Kafka, Partitioners, logLevel } = kafkajs;
const plain = new Kafka({ brokers: [...KAFKA_BROKERS], clientId: 'conformance-foreign', logLevel: logLevel.NOTHING });
const producer = plain.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
let producerReady: Promise<void> | undefined;
afterAll(async () => {
  if (producerReady) await producer.disconnect();
});

describe.skipIf(!available)('kafka (real broker)', () => {
  runConformance({
    name: 'kafka',
    features: KAFKA_FEATURES,
    timeScale: 2,
    async connect(options) {
      const adapter = new KafkaAdapter({
        brokers: KAFKA_BROKERS,
        logger: silentLogger,
        defaultPartitions: 4,
        consumer: { sessionTimeout: 6_000, rebalanceTimeout: 5_000, heartbeatInterval: 300 },
      });
      const broker = new Broker(adapter, options);
      await broker.init();
      return broker;
    },
    async publishForeign(topic, payload, headers) {
      producerReady ??= producer.connect();
      await producerReady;
      await producer.send({ topic, acks: -1, messages: [{ value: Buffer.from(payload), headers }] });
    },
    async restart() {
      await runKafkaScript('restart');
    },
  });
});
