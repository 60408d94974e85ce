/**
 * Notifications: e-mails the customer. No schema: the handler reads only the fields it needs.
 */
import type { Handler } from '../../../runtime/message.js';
import { downstream } from '../downstream.js';

const notifications: Handler<{ orderId: string; customer: string }> = async (msg) => {
  // A real handler calls the mail service here, with msg.id as its idempotency key.
  await new Promise((resolve) => setTimeout(resolve, 1));
  downstream.emails.set(msg.body.orderId, msg.body.customer);
};

export default notifications;
