/**
 * `omniqueue/infra`: deployment outputs from one topology — the AWS CDK construct
 * (`OmniQueueTopology`, needs the optional peers `aws-cdk-lib` and `constructs`), the Azure Bicep
 * template and Functions entry files, and KEDA ScaledObjects for the container worker (needs `yaml`).
 *
 * @packageDocumentation
 */
export * from './cdk/index.js';
export * from './bicep/index.js';
export * from './keda/index.js';
export { checkOverrides, deliveryLimitOf, effectiveRuntime, groupKey, maxAttemptsOf, type RuntimeOverrides } from './groups.js';
