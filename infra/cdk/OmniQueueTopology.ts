/**
 * `OmniQueueTopology`: an AWS CDK L3 construct that turns an OmniQueue topology into SNS topics,
 * SQS queues with dead-letter queues, raw-delivery subscriptions, Lambda functions with SQS event
 * source mappings, and CloudWatch alarms — safe by default, checked at synth.
 *
 * @packageDocumentation
 */
import { Annotations, Duration, Token, type CfnResource } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { snsTopicName, sqsQueueName } from '../../adapters/sqs/names.js';
import { DEAD_LETTER_GROUP, deadLetterTopicOf } from '../../runtime/Broker.js';
import { ConfigError } from '../../runtime/errors.js';
import { GroupRuntime, type LoadedTopology, type ResolvedGroup } from '../../runtime/topology.js';
import { checkOverrides, deliveryLimitOf, effectiveRuntime, groupKey, type RuntimeOverrides } from '../groups.js';

/**
 * Lambda settings of one group. Read from the construct's `lambda` prop (keyed `topic/group`), else
 * from the group's `createOptions.lambda` in the topology file; the prop wins field by field.
 */
export interface LambdaGroupSettings {
  /** Records per invocation (`BatchSize`). Default 10. Standard queues: ≤ 10, or ≤ 10,000 with a batching window ≥ 1 s. FIFO: ≤ 10. */
  readonly batchSize?: number;
  /** `MaximumBatchingWindowInSeconds`, 0–300. Default 0. Not allowed on FIFO queues. */
  readonly batchingWindowSeconds?: number;
  /** `ScalingConfig.MaximumConcurrency`, 2–1000: most concurrent invocations for this queue. Default: unlimited. */
  readonly maxConcurrency?: number;
  /** Function timeout, 1–900 s. Default 30. */
  readonly timeoutSeconds?: number;
  /** Function memory, 128–10,240 MB. Default 256. */
  readonly memoryMb?: number;
}

/** SQS/SNS creation options the construct reads from a group's merged `createOptions`. */
export interface SqsInfraCreateOptions {
  /** FIFO topic and queues (as the `sqs` adapter's `createOptions.fifo`). */
  readonly fifo?: boolean;
  /** Overrides the redrive `maxReceiveCount` (default: `retry.maxAttempts + 1`, as the adapter). */
  readonly maxReceiveCount?: number;
  /** Queue visibility timeout in seconds. Default: 30 for worker groups, 6 × timeout + batching window for Lambda groups. */
  readonly visibilityTimeoutSeconds?: number;
  /** SNS filter policy of the group's subscription (the JSON object SNS takes). */
  readonly filterPolicy?: Readonly<Record<string, unknown>>;
  /** Where the filter policy applies: `MessageAttributes` (default, the headers) or `MessageBody`. */
  readonly filterPolicyScope?: 'MessageAttributes' | 'MessageBody';
  /** Lambda settings (see {@link LambdaGroupSettings}). */
  readonly lambda?: LambdaGroupSettings;
}

/** Properties of {@link OmniQueueTopology}. */
export interface OmniQueueTopologyProps {
  /** The topology (`await loadTopology('omniqueue.config.ts')`). */
  readonly topology: LoadedTopology;
  /**
   * Code of each Lambda group, keyed `topic/group`: a directory holding `index.mjs` (what
   * {@link bundleLambdaFunctions} returns, built with the project's esbuild settings) or any
   * `lambda.Code`. Every group that runs on Lambda needs an entry.
   */
  readonly code?: Readonly<Record<string, string | lambda.Code>>;
  /** Run groups on another runtime in this stack, keyed `topic/group` (e.g. `{ 'orders/notifications': 'lambda' }`). */
  readonly runtimes?: RuntimeOverrides;
  /** Lambda settings per group, keyed `topic/group`; they win over `createOptions.lambda`. */
  readonly lambda?: Readonly<Record<string, LambdaGroupSettings>>;
  /** Lambda runtime. Default `nodejs22.x`, the target of the function bundles (`esbuild.config.mjs`: `node22`). */
  readonly lambdaRuntime?: lambda.Runtime;
  /** Lambda architecture. Default ARM64. */
  readonly architecture?: lambda.Architecture;
  /** Make every topic and queue FIFO. Default: the topology adapter's `fifo` setting when it is `sqs`, else false. */
  readonly fifo?: boolean;
  /**
   * A customer-managed KMS key for the queues (the key policy must let `sns.amazonaws.com` use it).
   * Default: SSE with SQS-managed keys. The AWS-managed `alias/aws/sqs` key is never used: SNS cannot
   * deliver to a queue encrypted with it.
   */
  readonly queueEncryptionKey?: kms.IKey;
  /** A KMS key for server-side encryption of the SNS topics. Default: none (the topics enforce TLS). */
  readonly topicEncryptionKey?: kms.IKey;
  /** Age of the oldest message (seconds) above which a queue's alarm fires. Default 600. */
  readonly oldestMessageAgeAlarmSeconds?: number;
  /** Actions of every alarm (e.g. an SNS action to page someone). */
  readonly alarmActions?: readonly cloudwatch.IAlarmAction[];
  /** Retention of the functions' log groups. Default one month. */
  readonly logRetention?: logs.RetentionDays;
  /** Retention of the dead-letter queues. Default 14 days (the SQS maximum). */
  readonly deadLetterRetention?: Duration;
}

/** The two alarms of a group. */
export interface GroupAlarms {
  /** Fires when the group's dead-letter queue holds any message (`ApproximateNumberOfMessagesVisible > 0`). */
  readonly deadLetterDepth: cloudwatch.Alarm;
  /** Fires when the oldest message of the group's queue is older than the threshold. */
  readonly oldestMessageAge: cloudwatch.Alarm;
}

/** Lambda settings once defaults are applied. */
export interface ResolvedLambdaSettings {
  readonly batchSize: number;
  readonly batchingWindowSeconds: number;
  readonly maxConcurrency: number | undefined;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
}

const DEFAULT_VISIBILITY_SECONDS = 30;
const MAX_VISIBILITY_SECONDS = 43_200;
const DEFAULT_OLDEST_AGE_SECONDS = 600;
const LAMBDA_DEFAULTS = { batchSize: 10, batchingWindowSeconds: 0, timeoutSeconds: 30, memoryMb: 256 } as const;

/**
 * One topology as AWS resources:
 *
 * - per topic, an SNS topic (FIFO when `createOptions.fifo`), TLS enforced;
 * - per group, an SQS queue named as the `sqs` adapter names it (`<topic>-<group>`) with SSE
 *   (SQS-managed keys, or your key), TLS enforced, and a dead-letter queue (`<topic>_<group>_dlq-dlq`,
 *   the adapter's) with redrive `maxReceiveCount = retry.maxAttempts + 1`; a raw-delivery
 *   subscription with the group's optional filter policy; alarms on dead-letter depth and on the
 *   age of the oldest message;
 * - per group that runs on Lambda, a function from the group's bundle (`nodejs22.x`, its own log
 *   group and a role that may only consume its queue, send to its DLQ and write its logs) and an SQS
 *   event source mapping with `ReportBatchItemFailures`, batch size, batching window and maximum
 *   concurrency from the settings.
 *
 * Checked at synth: a Lambda group's visibility timeout is at least 6 × the function timeout plus the
 * batching window (AWS's rule; CloudFormation would only fail at deploy), batch limits, FIFO rules.
 *
 * Every resource is reachable for overrides: {@link topics}, {@link queues}, {@link deadLetterQueues},
 * {@link subscriptions}, {@link functions}, {@link eventSources}, {@link alarms} (keys: topic name,
 * or `topic/group`).
 */
export class OmniQueueTopology extends Construct {
  /** SNS topics by topic name. */
  readonly topics: Readonly<Record<string, sns.Topic>> = {};
  /** Group queues by `topic/group`. */
  readonly queues: Readonly<Record<string, sqs.Queue>> = {};
  /** Dead-letter queues by `topic/group`. */
  readonly deadLetterQueues: Readonly<Record<string, sqs.Queue>> = {};
  /** SNS → SQS subscriptions by `topic/group`. */
  readonly subscriptions: Readonly<Record<string, sns.Subscription>> = {};
  /** Lambda functions by `topic/group` (Lambda groups only). */
  readonly functions: Readonly<Record<string, lambda.Function>> = {};
  /** SQS event source mappings by `topic/group` (Lambda groups only). */
  readonly eventSources: Readonly<Record<string, lambda.EventSourceMapping>> = {};
  /** Alarms by `topic/group`. */
  readonly alarms: Readonly<Record<string, GroupAlarms>> = {};
  /** Lambda settings in effect, by `topic/group` (Lambda groups only). */
  readonly lambdaSettings: Readonly<Record<string, ResolvedLambdaSettings>> = {};

  constructor(scope: Construct, id: string, props: OmniQueueTopologyProps) {
    super(scope, id);
    const { topology } = props;
    checkOverrides(topology, props.runtimes);
    const adapterFifo = topology.adapter.name === 'sqs' && (topology.adapter as { fifo?: unknown }).fifo === true;
    const defaultFifo = props.fifo ?? adapterFifo;
    const topics = this.topics as Record<string, sns.Topic>;
    const queues = this.queues as Record<string, sqs.Queue>;
    const deadLetterQueues = this.deadLetterQueues as Record<string, sqs.Queue>;
    const subscriptionMap = this.subscriptions as Record<string, sns.Subscription>;
    const functions = this.functions as Record<string, lambda.Function>;
    const eventSources = this.eventSources as Record<string, lambda.EventSourceMapping>;
    const alarms = this.alarms as Record<string, GroupAlarms>;
    const lambdaSettings = this.lambdaSettings as Record<string, ResolvedLambdaSettings>;
    const oldestAge = props.oldestMessageAgeAlarmSeconds ?? DEFAULT_OLDEST_AGE_SECONDS;

    // Topics first: one is FIFO when any of its groups asks for it, and then all of them must be.
    const fifoByTopic = new Map<string, boolean>();
    for (const group of topology.groups) {
      const fifo = createOptionsOf(group).fifo ?? defaultFifo;
      const seen = fifoByTopic.get(group.topic);
      if (seen !== undefined && seen !== fifo) {
        throw new ConfigError(
          `OmniQueueTopology: topic '${group.topic}' mixes FIFO and standard groups (group '${group.group}' has fifo: ${fifo}); an SNS FIFO topic only delivers to FIFO queues — set createOptions.fifo on the topic.`,
        );
      }
      fifoByTopic.set(group.topic, fifo);
    }
    for (const [topic, fifo] of fifoByTopic) {
      topics[topic] = new sns.Topic(this, `Topic:${topic}`, {
        topicName: snsTopicName(topic, fifo),
        displayName: `OmniQueue topic ${topic}`,
        fifo: fifo || undefined,
        contentBasedDeduplication: fifo ? false : undefined,
        enforceSSL: true,
        masterKey: props.topicEncryptionKey,
      });
    }

    for (const group of topology.groups) {
      const key = groupKey(group.topic, group.group);
      const label = `topics.${group.topic}.groups.${group.group}`;
      const options = createOptionsOf(group);
      const fifo = fifoByTopic.get(group.topic)!;
      const runtime = effectiveRuntime(group, props.runtimes);
      const scope = new Construct(this, `Group:${group.topic}:${group.group}`);
      const settings = runtime === GroupRuntime.Lambda ? resolveLambdaSettings(label, fifo, options.lambda, props.lambda?.[key]) : undefined;
      const visibilitySeconds = visibilityTimeoutOf(label, options.visibilityTimeoutSeconds, settings);
      const maxReceiveCount = options.maxReceiveCount ?? deliveryLimitOf(group);
      if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
        throw new ConfigError(`OmniQueueTopology: ${label}: maxReceiveCount must be an integer 1–1000, got ${maxReceiveCount}.`);
      }
      const encryption = props.queueEncryptionKey
        ? { encryption: sqs.QueueEncryption.KMS, encryptionMasterKey: props.queueEncryptionKey }
        : { encryption: sqs.QueueEncryption.SQS_MANAGED };

      const dlq = new sqs.Queue(scope, 'DeadLetterQueue', {
        queueName: sqsQueueName(deadLetterTopicOf(group.topic, group.group), DEAD_LETTER_GROUP, fifo),
        fifo: fifo || undefined,
        retentionPeriod: props.deadLetterRetention ?? Duration.days(14),
        enforceSSL: true,
        ...encryption,
      });
      const queue = new sqs.Queue(scope, 'Queue', {
        queueName: sqsQueueName(group.topic, group.group, fifo),
        fifo: fifo || undefined,
        visibilityTimeout: Duration.seconds(visibilitySeconds),
        deadLetterQueue: { queue: dlq, maxReceiveCount },
        enforceSSL: true,
        ...encryption,
      });
      deadLetterQueues[key] = dlq;
      queues[key] = queue;

      const subscription = topics[group.topic]!.addSubscription(new subscriptions.SqsSubscription(queue, { rawMessageDelivery: true }));
      if (options.filterPolicy !== undefined) {
        const cfn = subscription.node.defaultChild as sns.CfnSubscription;
        cfn.filterPolicy = options.filterPolicy;
        cfn.filterPolicyScope = options.filterPolicyScope ?? 'MessageAttributes';
      }
      subscriptionMap[key] = subscription;

      const alarmActions = props.alarmActions ?? [];
      const deadLetterDepth = new cloudwatch.Alarm(scope, 'DeadLetterDepthAlarm', {
        alarmDescription: `OmniQueue ${key}: messages in the dead-letter queue ${dlq.node.id}`,
        metric: dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      const oldestMessageAge = new cloudwatch.Alarm(scope, 'OldestMessageAgeAlarm', {
        alarmDescription: `OmniQueue ${key}: oldest message older than ${oldestAge} s`,
        metric: queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM }),
        threshold: oldestAge,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      for (const action of alarmActions) {
        deadLetterDepth.addAlarmAction(action);
        oldestMessageAge.addAlarmAction(action);
      }
      alarms[key] = { deadLetterDepth, oldestMessageAge };

      if (settings) {
        lambdaSettings[key] = settings;
        const code = codeOf(label, key, props.code?.[key]);
        const logGroup = new logs.LogGroup(scope, 'LogGroup', { retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH });
        // Own role, no managed policy: write its own logs, consume its own queue, send to its own DLQ.
        const role = new iam.Role(scope, 'Role', {
          assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
          description: `OmniQueue ${key}: consume ${queue.node.id} only`,
        });
        logGroup.grantWrite(role);
        const fn = new lambda.Function(scope, 'Function', {
          description: `OmniQueue ${key} (${group.config.handler})`,
          runtime: props.lambdaRuntime ?? lambda.Runtime.NODEJS_22_X,
          architecture: props.architecture ?? lambda.Architecture.ARM_64,
          handler: 'index.handler',
          code,
          timeout: Duration.seconds(settings.timeoutSeconds),
          memorySize: settings.memoryMb,
          role,
          logGroup,
        });
        if (props.lambdaRuntime === undefined) {
          suppressNag(
            fn.node.defaultChild as lambda.CfnFunction,
            'AwsSolutions-L1',
            'nodejs22.x is the target the function bundle is built for (esbuild.config.mjs: target node22) and a supported Lambda runtime; pass lambdaRuntime to move to a newer one.',
          );
        }
        queue.grantConsumeMessages(fn);
        dlq.grantSendMessages(fn);
        const mapping = new lambda.EventSourceMapping(scope, 'EventSource', {
          target: fn,
          eventSourceArn: queue.queueArn,
          batchSize: settings.batchSize,
          maxBatchingWindow: settings.batchingWindowSeconds > 0 ? Duration.seconds(settings.batchingWindowSeconds) : undefined,
          maxConcurrency: settings.maxConcurrency,
          reportBatchItemFailures: true,
        });
        // The mapping is checked against the role's permissions when it is created.
        mapping.node.addDependency(role);
        functions[key] = fn;
        eventSources[key] = mapping;

        // Re-checked at synth, so an override through the escape hatches cannot break the rule either.
        this.node.addValidation({
          validate: () => checkSynthesizedVisibility(label, queue, fn, mapping),
        });
      }
    }
    if (topology.groups.every((group) => effectiveRuntime(group, props.runtimes) !== GroupRuntime.Lambda) && props.code && Object.keys(props.code).length > 0) {
      Annotations.of(this).addWarningV2('omniqueue:unused-code', 'OmniQueueTopology: `code` was given but no group runs on Lambda.');
    }
  }

  /** Lets `grantee` publish to the SNS topic of `topic` (and nothing else). */
  grantPublish(topic: string, grantee: iam.IGrantable): iam.Grant {
    const target = this.topics[topic];
    if (!target) throw new ConfigError(`OmniQueueTopology.grantPublish: no topic '${topic}' (known: ${Object.keys(this.topics).join(', ')}).`);
    return target.grantPublish(grantee);
  }

  /** Lets `grantee` consume the queue of `topic/group` and dead-letter to its DLQ (what a worker of the group needs). */
  grantConsume(topic: string, group: string, grantee: iam.IGrantable): iam.Grant {
    const key = groupKey(topic, group);
    const queue = this.queues[key];
    if (!queue) throw new ConfigError(`OmniQueueTopology.grantConsume: no group '${key}' (known: ${Object.keys(this.queues).join(', ')}).`);
    this.deadLetterQueues[key]!.grantSendMessages(grantee);
    return queue.grantConsumeMessages(grantee);
  }
}

function createOptionsOf(group: ResolvedGroup): SqsInfraCreateOptions {
  return (group.createOptions ?? {}) as SqsInfraCreateOptions;
}

/** Merges the prop over `createOptions.lambda`, applies defaults and checks every limit. */
export function resolveLambdaSettings(label: string, fifo: boolean, fromTopology: LambdaGroupSettings | undefined, fromProps: LambdaGroupSettings | undefined): ResolvedLambdaSettings {
  const merged = { ...stripUndefined(fromTopology ?? {}), ...stripUndefined(fromProps ?? {}) } as LambdaGroupSettings;
  const settings: ResolvedLambdaSettings = {
    batchSize: merged.batchSize ?? LAMBDA_DEFAULTS.batchSize,
    batchingWindowSeconds: merged.batchingWindowSeconds ?? LAMBDA_DEFAULTS.batchingWindowSeconds,
    maxConcurrency: merged.maxConcurrency,
    timeoutSeconds: merged.timeoutSeconds ?? LAMBDA_DEFAULTS.timeoutSeconds,
    memoryMb: merged.memoryMb ?? LAMBDA_DEFAULTS.memoryMb,
  };
  const fail = (field: string, problem: string): never => {
    throw new ConfigError(`OmniQueueTopology: ${label}: lambda.${field} ${problem}`);
  };
  const integer = (field: keyof ResolvedLambdaSettings, min: number, max: number): void => {
    const value = settings[field];
    if (value === undefined) return;
    if (!Number.isInteger(value) || value < min || value > max) fail(field, `must be an integer ${min}–${max}, got ${value}.`);
  };
  integer('batchingWindowSeconds', 0, 300);
  integer('timeoutSeconds', 1, 900);
  integer('memoryMb', 128, 10_240);
  integer('maxConcurrency', 2, 1000);
  if (fifo) {
    integer('batchSize', 1, 10);
    if (settings.batchingWindowSeconds > 0) fail('batchingWindowSeconds', `must be 0 on a FIFO queue (Lambda has no batching window for FIFO), got ${settings.batchingWindowSeconds}.`);
  } else if (settings.batchingWindowSeconds >= 1) {
    integer('batchSize', 1, 10_000);
  } else if (!Number.isInteger(settings.batchSize) || settings.batchSize < 1 || settings.batchSize > 10) {
    fail('batchSize', `must be an integer 1–10 without a batching window (up to 10,000 with batchingWindowSeconds ≥ 1), got ${settings.batchSize}.`);
  }
  return settings;
}

/**
 * The queue's visibility timeout: as configured, else the safe default; for a Lambda group it must be
 * at least 6 × the function timeout plus the batching window.
 */
export function visibilityTimeoutOf(label: string, configured: number | undefined, settings: ResolvedLambdaSettings | undefined): number {
  const required = settings ? 6 * settings.timeoutSeconds + settings.batchingWindowSeconds : 0;
  const visibility = configured ?? Math.max(DEFAULT_VISIBILITY_SECONDS, required);
  if (!Number.isInteger(visibility) || visibility < 0 || visibility > MAX_VISIBILITY_SECONDS) {
    throw new ConfigError(`OmniQueueTopology: ${label}: visibilityTimeoutSeconds must be an integer 0–${MAX_VISIBILITY_SECONDS}, got ${visibility}.`);
  }
  if (settings && visibility < required) throw new ConfigError(visibilityMessage(label, visibility, settings.timeoutSeconds, settings.batchingWindowSeconds));
  return visibility;
}

function visibilityMessage(label: string, visibility: number, timeout: number, window: number): string {
  return (
    `OmniQueueTopology: ${label}: the queue's visibility timeout (${visibility} s) must be at least 6 × the function timeout (${timeout} s) ` +
    `+ the batching window (${window} s) = ${6 * timeout + window} s, or a message can become visible again while a batch is still running. ` +
    `Raise createOptions.visibilityTimeoutSeconds or lower lambda.timeoutSeconds.`
  );
}

/** The synth-time re-check on the L1 values (after any escape-hatch override). */
function checkSynthesizedVisibility(label: string, queue: sqs.Queue, fn: lambda.Function, mapping: lambda.EventSourceMapping): string[] {
  const cfnQueue = queue.node.defaultChild as sqs.CfnQueue;
  const cfnFunction = fn.node.defaultChild as lambda.CfnFunction;
  const cfnMapping = mapping.node.defaultChild as lambda.CfnEventSourceMapping;
  const visibility = cfnQueue.visibilityTimeout;
  const timeout = cfnFunction.timeout ?? 3;
  const window = cfnMapping.maximumBatchingWindowInSeconds ?? 0;
  if ([visibility, timeout, window].some((value) => value === undefined || Token.isUnresolved(value))) return [];
  return visibility! < 6 * timeout + window ? [visibilityMessage(label, visibility!, timeout, window)] : [];
}

function codeOf(label: string, key: string, code: string | lambda.Code | undefined): lambda.Code {
  if (code === undefined) {
    throw new ConfigError(
      `OmniQueueTopology: ${label} runs on Lambda but no code was given for '${key}': build the bundles first with ` +
        '`const code = await bundleLambdaFunctions(topology)` (esbuild, the settings of esbuild.config.mjs) and pass `code`.',
    );
  }
  return typeof code === 'string' ? lambda.Code.fromAsset(code) : code;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Adds a cdk-nag suppression to a resource's metadata without importing cdk-nag (what `NagSuppressions` writes). */
export function suppressNag(resource: CfnResource, id: string, reason: string): void {
  const existing = (resource.getMetadata('cdk_nag') as { rules_to_suppress?: { id: string; reason: string }[] } | undefined)?.rules_to_suppress ?? [];
  resource.addMetadata('cdk_nag', { rules_to_suppress: [...existing, { id, reason }] });
}
