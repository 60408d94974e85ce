/**
 * Stand-ins for the systems the handlers call — the payment provider, the warehouse, the mailer —
 * recording what each was asked to do. They live on `globalThis`, like an external system, so every
 * copy of this module in one process sees the same records (a worker loads handler files through
 * its own module loader). Each write is keyed by order id, so a redelivered message changes nothing.
 */
export interface Downstream {
  /** Charged amount by order id (the payment provider). */
  readonly charges: Map<string, number>;
  /** Reserved item count by order id (the warehouse). */
  readonly reservations: Map<string, number>;
  /** `orderId → customer` of every confirmation e-mail (the mailer). */
  readonly emails: Map<string, string>;
}

const KEY = Symbol.for('omniqueue.examples.orders.downstream');
const store = globalThis as { [KEY]?: Downstream };

/** The process-wide downstream records. */
export const downstream: Downstream = (store[KEY] ??= { charges: new Map(), reservations: new Map(), emails: new Map() });

/** Forgets every record (between runs). */
export function resetDownstream(): void {
  downstream.charges.clear();
  downstream.reservations.clear();
  downstream.emails.clear();
}
