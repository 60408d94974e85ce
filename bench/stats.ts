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
