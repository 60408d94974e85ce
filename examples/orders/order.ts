/**
 * The order message every group of the `orders` topic receives, as a zod schema (a Standard Schema:
 * a body that fails it is dead-lettered at once with reason `schema-validation-failed`).
 * `zod/mini` keeps a Lambda bundle of a handler small (~18 KB of schema code instead of ~440 KB).
 */
import * as z from 'zod/mini';

/** Schema of an order message body. */
export const Order = z.object({
  orderId: z.string().check(z.minLength(1)),
  customer: z.email(),
  amount: z.number(),
  items: z.array(z.object({ sku: z.string(), quantity: z.number().check(z.int(), z.positive()) })).check(z.minLength(1)),
});

/** An order message body. */
export type Order = z.infer<typeof Order>;
