/**
 * A parser for the Bicep subset `omniqueue infra azure` writes (one `key: value` per line, nested
 * `{ }` objects and `[ ]` arrays, `//` comments), so tests check the template structurally: every
 * declaration, its type, and each property as data. Quoted strings become strings, numbers and
 * booleans become values, anything else becomes `{ expression }`.
 */

/** A `resource` declaration. */
export interface BicepResource {
  readonly symbol: string;
  readonly type: string;
  readonly apiVersion: string;
  readonly body: Record<string, unknown>;
}

/** A `param` declaration. */
export interface BicepParam {
  readonly name: string;
  readonly type: string;
  readonly defaultValue: unknown;
  readonly decorators: readonly string[];
}

/** What {@link parseBicep} returns. */
export interface BicepFile {
  readonly params: readonly BicepParam[];
  readonly resources: readonly BicepResource[];
  readonly outputs: readonly { name: string; type: string; value: unknown }[];
}

/** Parses the template; throws on any line it does not understand (so a malformed file fails the test). */
export function parseBicep(text: string): BicepFile {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('//'));
  const params: BicepParam[] = [];
  const resources: BicepResource[] = [];
  const outputs: { name: string; type: string; value: unknown }[] = [];
  let decorators: string[] = [];
  let index = 0;
  while (index < lines.length) {
    const line = lines[index++]!;
    let match: RegExpExecArray | null;
    if (line.startsWith('@')) {
      decorators.push(line);
    } else if ((match = /^param (\w+) (\w+)(?: = (.+))?$/.exec(line))) {
      params.push({ name: match[1]!, type: match[2]!, defaultValue: match[3] === undefined ? undefined : scalar(match[3]), decorators });
      decorators = [];
    } else if ((match = /^resource (\w+) '([^'@]+)@([^']+)' = \{$/.exec(line))) {
      const [body, next] = parseObject(lines, index);
      index = next;
      resources.push({ symbol: match[1]!, type: match[2]!, apiVersion: match[3]!, body });
    } else if ((match = /^output (\w+) (\w+) = (.+)$/.exec(line))) {
      outputs.push({ name: match[1]!, type: match[2]!, value: scalar(match[3]!) });
    } else {
      throw new Error(`Unexpected top-level Bicep line: ${line}`);
    }
  }
  return { params, resources, outputs };
}

function parseObject(lines: readonly string[], start: number): [Record<string, unknown>, number] {
  const object: Record<string, unknown> = {};
  let index = start;
  for (;;) {
    const line = lines[index++];
    if (line === undefined) throw new Error('Unterminated object');
    if (line === '}') return [object, index];
    const match = /^(\w+): (.*)$/.exec(line);
    if (!match) throw new Error(`Unexpected line in object: ${line}`);
    const [, key, rest] = match as unknown as [string, string, string];
    if (rest === '{') [object[key], index] = parseObject(lines, index);
    else if (rest === '{}') object[key] = {};
    else if (rest === '[') [object[key], index] = parseArray(lines, index);
    else object[key] = scalar(rest);
  }
}

function parseArray(lines: readonly string[], start: number): [unknown[], number] {
  const array: unknown[] = [];
  let index = start;
  for (;;) {
    const line = lines[index++];
    if (line === undefined) throw new Error('Unterminated array');
    if (line === ']') return [array, index];
    if (line === '{') {
      const [item, next] = parseObject(lines, index);
      array.push(item);
      index = next;
    } else {
      array.push(scalar(line));
    }
  }
}

function scalar(raw: string): unknown {
  if (/^'(?:[^'\\]|\\.)*'$/.test(raw)) return raw.slice(1, -1).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  if (/^-?\d+$/.test(raw)) return Number(raw);
  if (raw === 'true' || raw === 'false') return raw === 'true';
  return { expression: raw };
}
