/**
 * The order message every group of the `orders` topic receives, as a zod schema (a Standard Schema:
 * a body that fails it is dead-lettered at once with reason `schema-validation-failed`).
 */
import { z } from 'zod';

/** Schema of an order message body. */
export const Order = z.object({
  orderId: z.string().min(1),
  customer: z.email(),
  amount: z.number(),
  items: z.array(z.object({ sku: z.string(), quantity: z.number().int().positive() })).min(1),
});

/** An order message body. */
export type Order = z.infer<typeof Order>;
