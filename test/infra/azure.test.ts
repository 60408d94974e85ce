/**
 * `generateAzure` / `omniqueue infra azure`: the Bicep template is parsed (the subset the generator
 * writes) and checked resource by resource; the generated Functions entry file is imported and run
 * with a real `InvocationContext`, calling the example's own billing handler.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryFilterExpression } from '../../adapters/servicebus/codec.js';
import { AzureRole, generateAzure, type AzureInfra } from '../../infra/bicep/index.js';
import { run } from '../../runtime/cli/program.js';
import { loadTopology, type LoadedTopology } from '../../runtime/topology.js';
import { parseBicep, type BicepResource } from './bicepParser.js';

const examples = fileURLToPath(new URL('../../examples/orders/', import.meta.url));
const runtimes = { 'orders/billing': 'azure' } as const;

describe('omniqueue infra azure', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'omniqueue-azure-'));
  let topology: LoadedTopology;
  let result: AzureInfra;
  let resources: readonly BicepResource[];
  const ofType = (type: string) => resources.filter((resource) => resource.type === type);

  beforeAll(async () => {
    topology = await loadTopology(join(examples, 'omniqueue.config.ts'));
    result = generateAzure(topology, { outdir, runtimes, source: join(examples, 'omniqueue.config.ts') });
    resources = parseBicep(result.files.find((file) => file.path === 'main.bicep')!.contents).resources;
  });
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('declares the namespace, a topic per topic and per dead-letter topic, and two subscriptions per group', () => {
    expect(ofType('Microsoft.ServiceBus/namespaces')).toHaveLength(1);
    expect(ofType('Microsoft.ServiceBus/namespaces')[0]!.body.properties).toMatchObject({ minimumTlsVersion: '1.2', disableLocalAuth: true });
    expect(ofType('Microsoft.ServiceBus/namespaces/topics').map((topic) => topic.body.name)).toEqual(['orders', 'orders.billing.dlq', 'orders.inventory.dlq', 'orders.notifications.dlq']);
    expect(ofType('Microsoft.ServiceBus/namespaces/topics/subscriptions')).toHaveLength(6);
    expect(ofType('Microsoft.ServiceBus/namespaces/topics/subscriptions/rules')).toHaveLength(6);
    // Every parent names a declared resource.
    const symbols = new Set(resources.map((resource) => resource.symbol));
    for (const resource of resources) if (resource.body.parent !== undefined) expect(symbols).toContain(parentOf(resource));
  });

  it('gives each subscription maxDeliveryCount = maxAttempts + 1, dead-lettering, and forwarding to its dead-letter topic', () => {
    const subscription = (topic: string, name: string) => {
      const parent = resources.find((resource) => resource.type === 'Microsoft.ServiceBus/namespaces/topics' && resource.body.name === topic)!;
      return ofType('Microsoft.ServiceBus/namespaces/topics/subscriptions').find((resource) => parentOf(resource) === parent.symbol && resource.body.name === name)!;
    };
    const billing = subscription('orders', 'billing');
    expect(billing.body.properties).toEqual({ maxDeliveryCount: 4, deadLetteringOnMessageExpiration: true, forwardDeadLetteredMessagesTo: { expression: `${resources.find((r) => r.body.name === 'orders.billing.dlq')!.symbol}.name` } });
    expect(subscription('orders', 'inventory').body.properties).toMatchObject({ maxDeliveryCount: 6, deadLetteringOnMessageExpiration: true });
    expect(subscription('orders.billing.dlq', 'dlq').body.properties).toEqual({ maxDeliveryCount: 6, deadLetteringOnMessageExpiration: true });
    const rule = ofType('Microsoft.ServiceBus/namespaces/topics/subscriptions/rules').find((resource) => parentOf(resource) === billing.symbol)!;
    expect(rule.body).toMatchObject({ name: '$Default', properties: { filterType: 'SqlFilter', sqlFilter: { sqlExpression: retryFilterExpression('orders', 'billing') } } });
  });

  it('declares a Flex Consumption Function App with the identity-based Service Bus connection and least-privilege roles', () => {
    const [app] = ofType('Microsoft.Web/sites');
    expect(app!.body).toMatchObject({ kind: 'functionapp,linux', identity: { type: 'SystemAssigned' }, properties: { httpsOnly: true } });
    const settings = (app!.body.properties as { siteConfig: { appSettings: { name: string }[] } }).siteConfig.appSettings.map((setting) => setting.name);
    expect(settings).toEqual(['AzureWebJobsStorage__accountName', 'ServiceBusConnection__fullyQualifiedNamespace']);
    expect(app!.body.properties).toMatchObject({ functionAppConfig: { runtime: { name: 'node', version: '22' } } });
    expect(ofType('Microsoft.Web/serverfarms')[0]!.body.sku).toEqual({ tier: 'FlexConsumption', name: 'FC1' });
    const roles = ofType('Microsoft.Authorization/roleAssignments').map((role) => String((role.body.properties as { roleDefinitionId: { expression: string } }).roleDefinitionId.expression));
    expect(roles).toHaveLength(3);
    for (const id of [AzureRole.ServiceBusDataReceiver, AzureRole.ServiceBusDataSender, AzureRole.StorageBlobDataOwner]) expect(roles.some((role) => role.includes(id))).toBe(true);
  });

  it('writes host.json and one entry file per Azure group, importing the same handler module', () => {
    expect(result.files.map((file) => file.path)).toEqual(['main.bicep', 'host.json', 'src/functions/orders.billing.ts']);
    expect(JSON.parse(result.files[1]!.contents)).toMatchObject({ version: '2.0', extensionBundle: { id: 'Microsoft.Azure.Functions.ExtensionBundle' } });
    const entry = result.files[2]!.contents;
    expect(entry).toContain(`import { serviceBusTrigger } from "omniqueue/triggers/azure";`);
    const specifier = /import \* as module from "([^"]+)"/.exec(entry)![1]!;
    expect(resolve(outdir, 'src/functions', specifier).replace(/\.js$/, '.ts')).toBe(join(examples, 'handlers/billing.ts'));
    expect(entry).toMatch(/connection: "ServiceBusConnection",\s+topic: "orders",\s+group: "billing",\s+cardinality: "one",\s+retry: \{"maxAttempts":3/);
  });

  it('the generated entry runs the billing handler with a real InvocationContext', async () => {
    const code = await run(['node', 'omniqueue', 'infra', 'azure', '--config', join(examples, 'omniqueue.config.ts'), '--runtime', 'orders/billing=azure', '--out', outdir], {
      stdout: sink(),
      stderr: sink(),
    });
    expect(code).toBe(0);
    const file = join(outdir, 'src/functions/orders.billing.ts');
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(result.files[2]!.contents);
    const { handler } = (await import(pathToFileURL(file).href)) as { handler: (input: unknown, context: InvocationContext) => Promise<void> };
    const context = (id: string) =>
      new InvocationContext({ invocationId: id, functionName: 'orders-billing', triggerMetadata: { messageId: id, deliveryCount: 1, contentType: 'application/json', applicationProperties: {} } });
    const order = { orderId: 'o-1', customer: 'ada@example.com', amount: 42, items: [{ sku: 'tea', quantity: 1 }] };
    await expect(handler(order, context('m-1'))).resolves.toBeUndefined();
    // A negative amount makes the billing handler throw: the host-settled trigger abandons (rethrows).
    await expect(handler({ ...order, amount: -1 }, context('m-2'))).rejects.toThrow();
  });

  it('omits the Function App when no group runs on Azure', () => {
    const plain = generateAzure(topology, { outdir });
    expect(plain.files.map((file) => file.path)).toEqual(['main.bicep']);
    const parsed = parseBicep(plain.files[0]!.contents);
    expect(parsed.resources.filter((resource) => resource.type.startsWith('Microsoft.Web/'))).toEqual([]);
    expect(parsed.params.map((param) => param.name)).toEqual(['location', 'namespaceName', 'serviceBusSku']);
  });
});

function parentOf(resource: BicepResource): string | undefined {
  return (resource.body.parent as { expression?: string } | undefined)?.expression;
}

function sink(): NodeJS.WritableStream {
  const chunks: string[] = [];
  return { write: (chunk: string) => (chunks.push(chunk), true) } as unknown as NodeJS.WritableStream;
}
