/**
 * Azure outputs: a Bicep template for a topology and the Azure Functions entry files of its groups.
 *
 * @packageDocumentation
 */
export { AzureRole, generateAzure, type AzureInfra, type AzureInfraOptions, type GeneratedFile } from './generateAzure.js';
