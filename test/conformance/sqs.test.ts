/**
 * Conformance runner for the SQS/SNS adapter on the fauxqs emulator (test/brokers/sqs.sh).
 * The foreign publisher is a plain SNS client: a raw body and native message attributes, no
 * OmniQueue metadata.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { afterAll, describe } from 'vitest';
import { snsTopicName } from '../../adapters/sqs/names.js';
import { SqsAdapter } from '../../adapters/sqs/SqsAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { SQS_CLIENT_CONFIG, sqsMissing, sqsTestOptions } from '../brokers/sqs.js';
import { runConformance } from './runConformance.js';

const missing = await sqsMissing();
const sns = new SNSClient(SQS_CLIENT_CONFIG);
afterAll(() => sns.destroy());
const textDecoder = new TextDecoder();

describe.skipIf(missing !== undefined)(`sqs${missing ? ` — skipped: ${missing}` : ''}`, () => {
  runConformance({
    name: 'sqs (fauxqs)',
    features: new SqsAdapter().features,
    timeScale: 2,
    async connect(options) {
      const broker = new Broker(new SqsAdapter(sqsTestOptions()), options);
      await broker.init();
      return broker;
    },
    async publishForeign(topic, payload, headers) {
      const TopicArn = `arn:aws:sns:${SQS_CLIENT_CONFIG.region}:000000000000:${snsTopicName(topic, false)}`;
      const MessageAttributes = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, { DataType: 'String', StringValue: value }]));
      await sns.send(new PublishCommand({ TopicArn, Message: textDecoder.decode(payload), MessageAttributes }));
    },
  });
});
