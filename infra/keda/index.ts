/**
 * KEDA outputs: a ScaledObject per worker group, using the scaler of the topology's adapter.
 * Needs the optional peer `yaml`.
 *
 * @packageDocumentation
 */
export { dns1123, generateKeda, KedaScaler, type KedaManifests, type KedaOptions, type KubernetesObject } from './generateKeda.js';
