import { InvalidNameError } from './errors.js';

/** Characters allowed in topic and group names, as a human-readable list. */
export const NAME_RULE = 'letters A–Z a–z, digits 0–9, dot (.), underscore (_) and hyphen (-), 1 to 200 characters, not starting with a dot or hyphen';

const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

/**
 * Checks a topic or group name once, in the runtime, so every adapter receives a name it can map
 * to its broker's rules. Throws {@link InvalidNameError} saying which characters are allowed.
 */
export function validateName(kind: 'topic' | 'group', name: unknown): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    const shown = typeof name === 'string' ? `'${name}'` : String(name);
    throw new InvalidNameError(`Invalid ${kind} name ${shown}: use ${NAME_RULE}.`);
  }
  return name;
}
