/**
 * Billing: charges the customer. A negative amount is a bug upstream, so the handler throws; the
 * runtime retries it (3 attempts, see the topology) and then dead-letters it to
 * `orders.billing.dlq` with reason `max-attempts-exceeded` and the error text.
 */
import type { Handler } from '../../../runtime/message.js';
import { downstream } from '../downstream.js';
import { Order } from '../order.js';

/** The body must be an {@link Order}; anything else goes straight to the dead-letter topic. */
export const schema = Order;

const billing: Handler<Order> = async (msg) => {
  if (msg.body.amount < 0) throw new Error(`cannot charge a negative amount (${msg.body.amount}) for ${msg.body.orderId}`);
  await new Promise((resolve) => setTimeout(resolve, 5)); // the payment provider's round trip
  downstream.charges.set(msg.body.orderId, msg.body.amount);
};

export default billing;
