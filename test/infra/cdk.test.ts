/**
 * OmniQueueTopology on the orders example and on small topologies: the synthesized template
 * (aws-cdk-lib/assertions), the synth-time safety checks, and cdk-nag's AwsSolutions pack.
 * The example is bundled and synthesized once for the file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Aspects, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleLambdaFunctions, OmniQueueTopology } from '../../infra/cdk/index.js';
import { loadTopology, resolveTopology, type LoadedTopology, type TopologyConfig } from '../../runtime/topology.js';

const examples = fileURLToPath(new URL('../../examples/orders/', import.meta.url));
const runtimes = { 'orders/notifications': 'lambda' } as const;
const inline = lambda.Code.fromInline('export const handler = async () => ({ batchItemFailures: [] });');

/** A topology from an object, handlers resolved against the example's folder. */
function topologyOf(config: TopologyConfig): LoadedTopology {
  return resolveTopology(config, examples);
}

function synth(build: (stack: Stack) => void, nag = false): { stack: Stack; template: Template } {
  const app = new App();
  const stack = new Stack(app, 'Test');
  build(stack);
  if (nag) Aspects.of(stack).add(new AwsSolutionsChecks({ verbose: true }));
  return { stack, template: Template.fromStack(stack) };
}

describe('OmniQueueTopology on the orders example', () => {
  let topology: LoadedTopology;
  let construct: OmniQueueTopology;
  let stack: Stack;
  let template: Template;

  const bundles = mkdtempSync(join(tmpdir(), 'omniqueue-cdk-test-'));
  afterAll(() => rmSync(bundles, { recursive: true, force: true }));

  beforeAll(async () => {
    topology = await loadTopology(join(examples, 'omniqueue.config.ts'));
    const code = await bundleLambdaFunctions(topology, { runtimes, outdir: bundles });
    ({ stack, template } = synth((scope) => {
      construct = new OmniQueueTopology(scope, 'Orders', {
        topology,
        runtimes,
        code,
        lambda: { 'orders/notifications': { batchSize: 25, batchingWindowSeconds: 2, maxConcurrency: 5, timeoutSeconds: 20 } },
      });
    }, true));
  });

  it('creates one topic, a queue and a DLQ per group, one function for the Lambda group', () => {
    const groups = topology.groups.length;
    expect(groups).toBe(3);
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.resourceCountIs('AWS::SNS::TopicPolicy', 1);
    template.resourceCountIs('AWS::SQS::Queue', 2 * groups);
    template.resourceCountIs('AWS::SQS::QueuePolicy', 2 * groups);
    template.resourceCountIs('AWS::SNS::Subscription', groups);
    template.resourceCountIs('AWS::CloudWatch::Alarm', 2 * groups);
    template.resourceCountIs('AWS::Lambda::Function', 1);
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    template.resourceCountIs('AWS::IAM::Role', 1);
    template.resourceCountIs('AWS::Logs::LogGroup', 1);
  });

  it('names topics and queues as the sqs adapter does, with redrive maxReceiveCount = maxAttempts + 1', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { TopicName: 'orders' });
    // billing: retry.maxAttempts 3 → 4; inventory: runtime default 5 → 6.
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'orders-billing',
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 30,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ordersbillingDeadLetterQueue'), 'Arn'] }, maxReceiveCount: 4 },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'orders-inventory', RedrivePolicy: Match.objectLike({ maxReceiveCount: 6 }) });
    template.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'orders_billing_dlq-dlq', SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
    // Never the AWS-managed key: no queue names a KMS key.
    for (const queue of Object.values(template.findResources('AWS::SQS::Queue'))) expect(queue.Properties.KmsMasterKeyId).toBeUndefined();
  });

  it('sizes the Lambda queue visibility timeout to 6 × timeout + batching window', () => {
    template.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'orders-notifications', VisibilityTimeout: 6 * 20 + 2 });
  });

  it('subscribes every queue with raw message delivery', () => {
    const subs = Object.values(template.findResources('AWS::SNS::Subscription'));
    expect(subs).toHaveLength(3);
    for (const sub of subs) expect(sub.Properties).toMatchObject({ Protocol: 'sqs', RawMessageDelivery: true });
  });

  it('enforces TLS on the topic and on every queue', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    const policies = Object.values(template.findResources('AWS::SQS::QueuePolicy'));
    expect(policies).toHaveLength(6);
    for (const policy of policies) {
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    }
    // SNS may send to a queue only from its own topic.
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'sqs:SendMessage', Principal: { Service: 'sns.amazonaws.com' }, Condition: { ArnEquals: { 'aws:SourceArn': { Ref: Match.anyValue() } } } }),
        ]),
      },
    });
  });

  it('runs the Lambda group on nodejs22.x with its bundle and an event source reporting batch item failures', () => {
    template.hasResourceProperties('AWS::Lambda::Function', { Runtime: 'nodejs22.x', Handler: 'index.handler', Timeout: 20, MemorySize: 256, Architectures: ['arm64'] });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 25,
      MaximumBatchingWindowInSeconds: 2,
      ScalingConfig: { MaximumConcurrency: 5 },
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ordersnotificationsQueue'), 'Arn'] },
    });
    expect(Object.keys(construct.functions)).toEqual(['orders/notifications']);
    expect(construct.lambdaSettings['orders/notifications']).toEqual({ batchSize: 25, batchingWindowSeconds: 2, maxConcurrency: 5, timeoutSeconds: 20, memoryMb: 256 });
  });

  it('grants the function only its own queue, its own DLQ and its own logs (no managed policy)', () => {
    const [policy] = Object.values(template.findResources('AWS::IAM::Policy'));
    const statements = policy!.Properties.PolicyDocument.Statement as { Action: string[]; Resource: unknown }[];
    expect(statements).toEqual([
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [expect.stringMatching(/ordersnotificationsLogGroup/), 'Arn'] } },
      {
        Effect: 'Allow',
        Action: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueUrl', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/ordersnotificationsQueue/), 'Arn'] },
      },
      { Effect: 'Allow', Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], Resource: { 'Fn::GetAtt': [expect.stringMatching(/ordersnotificationsDeadLetterQueue/), 'Arn'] } },
    ]);
    const [role] = Object.values(template.findResources('AWS::IAM::Role'));
    expect(role!.Properties.ManagedPolicyArns).toBeUndefined();
    expect(JSON.stringify(statements)).not.toContain('"*"');
  });

  it('alarms on dead-letter depth > 0 and on the age of the oldest message', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('ordersbillingDeadLetterQueue'), 'QueueName'] } }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApproximateAgeOfOldestMessage', Threshold: 600, ComparisonOperator: 'GreaterThanThreshold' });
    expect(Object.keys(construct.alarms)).toEqual(['orders/billing', 'orders/inventory', 'orders/notifications']);
  });

  it('exposes every generated resource for overrides', () => {
    expect(Object.keys(construct.topics)).toEqual(['orders']);
    for (const map of [construct.queues, construct.deadLetterQueues, construct.subscriptions]) expect(Object.keys(map)).toEqual(['orders/billing', 'orders/inventory', 'orders/notifications']);
    expect(Object.keys(construct.eventSources)).toEqual(['orders/notifications']);
  });

  it('passes cdk-nag AwsSolutions with no error or warning; the one suppression has a reason', () => {
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-'));
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-'));
    expect(errors.map((e) => e.entry.data)).toEqual([]);
    expect(warnings.map((e) => e.entry.data)).toEqual([]);
    const [fn] = Object.values(template.findResources('AWS::Lambda::Function'));
    expect(fn!.Metadata.cdk_nag.rules_to_suppress).toEqual([{ id: 'AwsSolutions-L1', reason: expect.stringMatching(/node22.{20,}/) }]);
  });
});

describe('OmniQueueTopology safety checks and options', () => {
  const billing = { handler: './handlers/billing.ts' };

  it('fails synth when the visibility timeout is shorter than 6 × timeout + batching window, naming the group and the numbers', () => {
    const topology = topologyOf({
      topics: { orders: { groups: { billing: { ...billing, runtime: 'lambda', createOptions: { visibilityTimeoutSeconds: 100, lambda: { timeoutSeconds: 20, batchingWindowSeconds: 5 } } } } } },
    });
    expect(() => synth((stack) => new OmniQueueTopology(stack, 'T', { topology, code: { 'orders/billing': inline } }))).toThrow(
      /topics\.orders\.groups\.billing: the queue's visibility timeout \(100 s\) must be at least 6 × the function timeout \(20 s\) \+ the batching window \(5 s\) = 125 s/,
    );
  });

  it('re-checks at synth after an escape-hatch override', () => {
    const topology = topologyOf({ topics: { orders: { groups: { billing: { ...billing, runtime: 'lambda' } } } } });
    expect(() =>
      synth((stack) => {
        const construct = new OmniQueueTopology(stack, 'T', { topology, code: { 'orders/billing': inline } });
        (construct.queues['orders/billing']!.node.defaultChild as { visibilityTimeout?: number }).visibilityTimeout = 60;
      }),
    ).toThrow(/visibility timeout \(60 s\) must be at least .* = 180 s/);
  });

  it('refuses a Lambda group without code, and Lambda limits', () => {
    const lambdaTopology = (options: Record<string, unknown> = {}) => topologyOf({ topics: { orders: { groups: { billing: { ...billing, runtime: 'lambda', createOptions: options } } } } });
    expect(() => synth((stack) => new OmniQueueTopology(stack, 'T', { topology: lambdaTopology() }))).toThrow(/runs on Lambda but no code was given for 'orders\/billing'/);
    expect(() => synth((stack) => new OmniQueueTopology(stack, 'T', { topology: lambdaTopology({ lambda: { batchSize: 100 } }), code: { 'orders/billing': inline } }))).toThrow(
      /lambda\.batchSize must be an integer 1–10 without a batching window/,
    );
    expect(() => synth((stack) => new OmniQueueTopology(stack, 'T', { topology: lambdaTopology({ fifo: true, lambda: { batchingWindowSeconds: 1 } }), code: { 'orders/billing': inline } }))).toThrow(
      /must be 0 on a FIFO queue/,
    );
    expect(() => synth((stack) => new OmniQueueTopology(stack, 'T', { topology: lambdaTopology(), runtimes: { 'orders/nope': 'lambda' } }))).toThrow(/no such group/);
  });

  it('makes FIFO topics and queues from createOptions.fifo, and applies filter policies', () => {
    const topology = topologyOf({
      topics: {
        payments: { createOptions: { fifo: true }, groups: { ledger: billing } },
        orders: { groups: { eu: { ...billing, createOptions: { filterPolicy: { region: ['eu-west-1', 'eu-central-1'] } } } } },
      },
    });
    const { template } = synth((stack) => new OmniQueueTopology(stack, 'T', { topology }));
    template.hasResourceProperties('AWS::SNS::Topic', { TopicName: 'payments.fifo', FifoTopic: true, ContentBasedDeduplication: false });
    template.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'payments-ledger.fifo', FifoQueue: true });
    template.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'payments_ledger_dlq-dlq.fifo', FifoQueue: true });
    template.hasResourceProperties('AWS::SNS::Subscription', { FilterPolicy: { region: ['eu-west-1', 'eu-central-1'] }, FilterPolicyScope: 'MessageAttributes', RawMessageDelivery: true });
    template.resourceCountIs('AWS::Lambda::Function', 0);
  });

  it('cdk-nag runs: an explicitly chosen runtime that is not the latest is not suppressed, and L1 reports it', () => {
    const topology = topologyOf({ topics: { orders: { groups: { billing: { ...billing, runtime: 'lambda' } } } } });
    const { stack } = synth((scope) => new OmniQueueTopology(scope, 'T', { topology, code: { 'orders/billing': inline }, lambdaRuntime: lambda.Runtime.NODEJS_22_X }), true);
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-L1'));
    expect(errors).toHaveLength(1);
  });

  it('grants publish and consume to a worker role, least privilege', () => {
    const topology = topologyOf({ topics: { orders: { groups: { billing } } } });
    const { template } = synth((stack) => {
      const construct = new OmniQueueTopology(stack, 'T', { topology });
      const worker = new iam.Role(stack, 'Worker', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
      construct.grantPublish('orders', worker);
      construct.grantConsume('orders', 'billing', worker);
    });
    const [policy] = Object.values(template.findResources('AWS::IAM::Policy'));
    const actions = (policy!.Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap((s) => s.Action);
    expect(actions).toEqual(expect.arrayContaining(['sns:Publish', 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:SendMessage']));
    expect(actions).not.toContain('sqs:*');
  });
});
