import WebSocket from 'ws';

/**
 * Opens a WebSocket and resolves once it is open. Rejects with the HTTP status and body when the
 * Pulsar WebSocket service refuses the upgrade (topic missing, subscription busy, broker starting…),
 * or with the socket error.
 */
export function openWebSocket(url: string, timeoutMs: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const fail = (error: Error): void => {
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.terminate();
      reject(error);
    };
    socket.once('open', () => {
      socket.removeAllListeners();
      resolve(socket);
    });
    socket.once('error', fail);
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => fail(new Error(`HTTP ${response.statusCode}: ${body.slice(0, 300)}`)));
      response.on('error', () => fail(new Error(`HTTP ${response.statusCode}`)));
    });
  });
}

/** Exponential backoff with jitter for reconnects: 100 ms doubling up to `maxMs`. */
export function reconnectDelay(failures: number, maxMs: number): number {
  const base = Math.min(maxMs, 100 * 2 ** Math.min(failures, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}
