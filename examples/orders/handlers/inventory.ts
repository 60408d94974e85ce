/**
 * Inventory: reserves stock. The warehouse API times out on the first attempt of every tenth
 * order; returning `nack()` asks for a redelivery after the retry policy's backoff.
 */
import { ack, nack, type Handler } from '../../../runtime/message.js';
import { downstream } from '../downstream.js';
import { Order } from '../order.js';

/** Same schema as billing: the handler gets a typed, validated body. */
export const schema = Order;

const inventory: Handler<Order> = async (msg) => {
  const flaky = Number(msg.body.orderId.replace(/\D/g, '')) % 10 === 0;
  if (flaky && msg.attempt === 1) return nack(); // warehouse timeout: try again shortly
  await new Promise((resolve) => setTimeout(resolve, 2));
  downstream.reservations.set(msg.body.orderId, msg.body.items.reduce((sum, item) => sum + item.quantity, 0));
  return ack();
};

export default inventory;
