/** One row of a benchmark table. */
export interface BenchRow {
  /** What was measured, e.g. `memory publish→ack`. */
  readonly name: string;
  /** Which client: `omniqueue` or the raw client's name. */
  readonly client: string;
  /** Messages per second. */
  readonly throughput: number;
  /** Latency percentiles in milliseconds, when measured. */
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  /** Ratio to the raw client's throughput in the same run, when there is one. */
  readonly ratio?: number;
  /** Free-form note. */
  readonly note?: string;
}

/** Returns the q-quantile (0…1) of the samples. */
export function quantile(samples: Float64Array | number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = Float64Array.from(samples).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Fills `ratio` for every non-baseline row from the baseline row with the same name. */
export function withRatios(rows: readonly BenchRow[], baselineClient: (row: BenchRow) => boolean): BenchRow[] {
  return rows.map((row) => {
    if (baselineClient(row)) return row;
    const baseline = rows.find((other) => other.name === row.name && baselineClient(other));
    return baseline ? { ...row, ratio: row.throughput / baseline.throughput } : row;
  });
}

/** Renders rows as a Markdown table. */
export function renderTable(rows: readonly BenchRow[]): string {
  const header = '| scenario | client | msg/s | p50 ms | p99 ms | ratio vs raw | note |\n|---|---|---:|---:|---:|---:|---|';
  const lines = rows.map((row) =>
    [
      row.name,
      row.client,
      Math.round(row.throughput).toLocaleString('en-US'),
      row.p50Ms === undefined ? '' : row.p50Ms.toFixed(3),
      row.p99Ms === undefined ? '' : row.p99Ms.toFixed(3),
      row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`,
      row.note ?? '',
    ].join(' | '),
  );
  return [header, ...lines.map((line) => `| ${line} |`)].join('\n');
}

/** Median of the values (NaN when empty). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Rounds per benchmark: `BENCH_ROUNDS` in the environment, default 3. */
export function benchRounds(fallback = 3): number {
  const fromEnv = Number(process.env.BENCH_ROUNDS);
  return Number.isInteger(fromEnv) && fromEnv >= 1 ? fromEnv : fallback;
}

/**
 * Runs every runner once per round, in an order that alternates from round to round (A B, B A,
 * A B …) so neither side always runs first on a noisy machine; returns each runner's results.
 */
export async function alternate<R>(rounds: number, runners: Readonly<Record<string, (round: number) => Promise<R>>>): Promise<Record<string, R[]>> {
  const names = Object.keys(runners);
  const results: Record<string, R[]> = Object.fromEntries(names.map((name) => [name, [] as R[]]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) results[name]!.push(await runners[name]!(round));
  }
  return results;
}

/** One timed run: throughput and per-message latencies. */
export interface TimedRun {
  readonly rate: number;
  readonly latencies?: Float64Array;
}

/** A row from repeated runs: median throughput, median p50 and p99, and every run's msg/s in the note. */
export function medianRow(name: string, client: string, runs: readonly TimedRun[], baseline: readonly TimedRun[] | undefined, note?: string): BenchRow {
  const rate = median(runs.map((run) => run.rate));
  const withLatency = runs.filter((run) => run.latencies && run.latencies.length > 0);
  const spread = `runs: ${runs.map((run) => Math.round(run.rate).toLocaleString('en-US')).join(' / ')}`;
  return {
    name,
    client,
    throughput: rate,
    ...(withLatency.length > 0
      ? { p50Ms: median(withLatency.map((run) => quantile(run.latencies!, 0.5))), p99Ms: median(withLatency.map((run) => quantile(run.latencies!, 0.99))) }
      : {}),
    ...(baseline ? { ratio: rate / median(baseline.map((run) => run.rate)) } : {}),
    note: note ? `${note}; ${spread}` : spread,
  };
}
