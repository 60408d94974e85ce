/**
 * `cdk synth` of examples/orders/infra, offline: the app runs with tsx (what cdk.json's `app` does)
 * into a temporary outdir, and the cloud assembly is checked: manifest, template, staged Lambda
 * bundle, and cdk-nag's AwsSolutions report (nothing non-compliant; every suppression has a reason).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

describe('examples/orders/infra (cdk synth, offline)', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'omniqueue-cdk-out-'));
  let template: { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

  beforeAll(async () => {
    await run(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), join(root, 'examples/orders/infra/app.ts')], {
      cwd: root,
      env: { ...process.env, CDK_OUTDIR: outdir, AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_PROFILE: '' },
      timeout: 120_000,
    });
    template = JSON.parse(readFileSync(join(outdir, 'OmniQueueOrders.template.json'), 'utf8'));
  });
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('writes a cloud assembly with the stack and its template', () => {
    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')) as { artifacts: Record<string, { type: string }> };
    expect(manifest.artifacts.OmniQueueOrders?.type).toBe('aws:cloudformation:stack');
    const counts: Record<string, number> = {};
    for (const resource of Object.values(template.Resources)) counts[resource.Type] = (counts[resource.Type] ?? 0) + 1;
    expect(counts).toEqual({
      'AWS::SNS::Topic': 1,
      'AWS::SNS::TopicPolicy': 1,
      'AWS::SNS::Subscription': 3,
      'AWS::SQS::Queue': 6,
      'AWS::SQS::QueuePolicy': 6,
      'AWS::CloudWatch::Alarm': 6,
      'AWS::Logs::LogGroup': 1,
      'AWS::IAM::Role': 1,
      'AWS::IAM::Policy': 1,
      'AWS::Lambda::Function': 1,
      'AWS::Lambda::EventSourceMapping': 1,
    });
  });

  it('stages the esbuild bundle of the notifications handler as the function asset', () => {
    const assets = readdirSync(outdir).filter((name) => name.startsWith('asset.'));
    expect(assets).toHaveLength(1);
    const bundle = join(outdir, assets[0]!, 'index.mjs');
    expect(existsSync(bundle)).toBe(true);
    const source = readFileSync(bundle, 'utf8');
    expect(source).toMatch(/export\s*\{[^}]*as handler/); // ESM, exports `handler`
    expect(source).toMatch(/import\(\s*["']@aws-sdk\/client-sqs["']\s*\)/); // the SDK stays external, loaded lazily
    expect(statSync(bundle).size).toBeLessThan(1_000_000);
  });

  it("has cdk-nag's AwsSolutions report with no non-compliant rule and a reason for each suppression", () => {
    const report = readFileSync(join(outdir, 'AwsSolutions--OmniQueueOrders-NagReport.csv'), 'utf8').trim().split('\n').slice(1);
    const rows = report.map((line) => (line.match(/"((?:[^"]|"")*)"/g) ?? []).map((cell) => cell.slice(1, -1)));
    expect(rows.length).toBeGreaterThan(20);
    expect(rows.filter((row) => row[2] === 'Non-Compliant')).toEqual([]);
    const suppressed = rows.filter((row) => row[2] === 'Suppressed');
    expect(suppressed.map((row) => row[0])).toEqual(['AwsSolutions-L1']);
    for (const row of suppressed) expect(row[3]!.length).toBeGreaterThan(30);
  });
});
