// fetch() for etcd over TLS with a CA of its own and a client certificate.
// Node's fetch takes no TLS options (and Bun's differ), so TLS requests go
// through node:https, which both runtimes have, and come back as a web
// Response so the Kv code reads plain and TLS answers alike. Imported only
// when an endpoint is https: the CNI executable on plain HTTP never loads it.
import { Agent, request } from "node:https";
import { Readable } from "node:stream";

export interface EtcdTls {
  /** PEM: the CA etcd's server certificate must chain to; default the system's. */
  ca?: string;
  /** PEM: the client certificate and its key, both or neither. */
  cert?: string;
  key?: string;
}

export interface EtcdRequestInit {
  method: string;
  body: string;
  headers: Record<string, string>;
  signal?: AbortSignal;
}

export type EtcdFetch = (url: string, init: EtcdRequestInit) => Promise<Response>;

export function createHttpsFetch(tls: EtcdTls): EtcdFetch {
  const agent = new Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key });
  return (url, init) =>
    new Promise((resolve, reject) => {
      const outgoing = request(
        url,
        {
          agent,
          method: init.method,
          headers: { ...init.headers, "content-length": Buffer.byteLength(init.body) },
          ...(init.signal === undefined ? {} : { signal: init.signal }),
        },
        (incoming) => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(incoming.headers)) {
            if (typeof value === "string") headers.set(name, value);
          }
          resolve(
            new Response(Readable.toWeb(incoming) as ReadableStream<Uint8Array>, {
              status: incoming.statusCode ?? 0,
              headers,
            }),
          );
        },
      );
      outgoing.on("error", reject);
      outgoing.end(init.body);
    });
}
