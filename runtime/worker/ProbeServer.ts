import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** What the probe server asks the worker. */
export interface ProbeState {
  /** Why the worker is not ready, or `undefined` when it is. */
  notReadyReason(): string | undefined;
  /** The Prometheus registry to serve on `/metrics`. */
  readonly registry: Registry;
}

/**
 * The worker's HTTP endpoints: `GET /healthz` (the process is up), `GET /readyz` (broker
 * initialised and every subscription running; 503 with the reason otherwise) and `GET /metrics`
 * (Prometheus text format).
 */
export class ProbeServer {
  readonly #server: Server;
  #port: number | undefined;

  constructor(private readonly state: ProbeState) {
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        response.end(`${error instanceof Error ? error.message : String(error)}\n`);
      });
    });
    this.#server.keepAliveTimeout = 1_000;
  }

  /** The bound port, once {@link listen} resolved. */
  get port(): number | undefined {
    return this.#port;
  }

  /** Binds `host:port` (port 0 picks a free port) and resolves with the bound port. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        this.#port = (this.#server.address() as AddressInfo).port;
        resolve(this.#port);
      });
    });
  }

  /** Stops listening and closes idle and open connections. */
  close(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?', 1)[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    switch (path) {
      case '/healthz':
        response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok\n');
        return;
      case '/readyz': {
        const reason = this.state.notReadyReason();
        if (reason === undefined) response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ready\n');
        else response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end(`not ready: ${reason}\n`);
        return;
      }
      case '/metrics': {
        const body = await this.state.registry.metrics();
        response.writeHead(200, { 'content-type': this.state.registry.contentType }).end(body);
        return;
      }
      default:
        response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /healthz, /readyz or /metrics\n');
    }
  }
}
