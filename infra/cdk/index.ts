/**
 * AWS CDK constructs for OmniQueue topologies (needs the optional peers `aws-cdk-lib` and `constructs`).
 *
 * @packageDocumentation
 */
export {
  OmniQueueTopology,
  resolveLambdaSettings,
  suppressNag,
  visibilityTimeoutOf,
  type GroupAlarms,
  type LambdaGroupSettings,
  type OmniQueueTopologyProps,
  type ResolvedLambdaSettings,
  type SqsInfraCreateOptions,
} from './OmniQueueTopology.js';
export { bundleLambdaFunctions, type BundleLambdaFunctionsOptions } from './bundleLambdaFunctions.js';
