// A token for another service account, from the API server's TokenRequest
// API (POST .../serviceaccounts/NAME/token), asked for with this pod's own
// token. install-cni uses it so the CNI plugin speaks as its own, narrower
// account (buoy-cni-plugin) instead of the node pod's.
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

export interface TokenRequestInput {
  /** The API server, `https://host:port`. */
  server: string;
  /** The API server's CA (PEM); undefined: the system's CAs. */
  caPem: string | undefined;
  skipTlsVerify: boolean;
  /** This pod's token: the caller. */
  bearerToken: string;
  namespace: string;
  serviceAccount: string;
  expirationSeconds: number;
  timeoutMs?: number;
}

export interface IssuedToken {
  token: string;
  /** As the API server reports it (it may shorten the lifetime asked for). */
  expirationTimestamp: string | undefined;
}

export async function requestServiceAccountToken(input: TokenRequestInput): Promise<IssuedToken> {
  const who = `${input.namespace}/${input.serviceAccount}`;
  const url = new URL(
    `/api/v1/namespaces/${encodeURIComponent(input.namespace)}/serviceaccounts/` +
      `${encodeURIComponent(input.serviceAccount)}/token`,
    input.server,
  );
  const body = JSON.stringify({
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { expirationSeconds: input.expirationSeconds },
  });
  let reply: { status: number; text: string };
  try {
    reply = await post(url, body, input);
  } catch (error) {
    throw new Error(`cannot ask ${input.server} for a token for service account ${who}`, {
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply.text);
  } catch {
    parsed = undefined;
  }
  const answer = (parsed ?? {}) as {
    message?: unknown;
    status?: { token?: unknown; expirationTimestamp?: unknown };
  };
  if (reply.status < 200 || reply.status > 299) {
    const message =
      typeof answer.message === "string" ? answer.message : reply.text.trim().slice(0, 200);
    throw new Error(
      `the API server refused a token for service account ${who}: HTTP ${reply.status}: ${message}`,
    );
  }
  const token = answer.status?.token;
  if (typeof token !== "string" || token === "") {
    throw new Error(`the API server's TokenRequest answer for ${who} holds no token`);
  }
  const expires = answer.status?.expirationTimestamp;
  return { token, expirationTimestamp: typeof expires === "string" ? expires : undefined };
}

function post(
  url: URL,
  body: string,
  input: TokenRequestInput,
): Promise<{ status: number; text: string }> {
  const send = url.protocol === "http:" ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const request = send(
      url,
      {
        method: "POST",
        headers: {
          authorization: `Bearer ${input.bearerToken}`,
          "content-type": "application/json",
          accept: "application/json",
          "content-length": Buffer.byteLength(body),
        },
        timeout: input.timeoutMs ?? 10_000,
        ...(url.protocol === "https:"
          ? {
              rejectUnauthorized: !input.skipTlsVerify,
              ...(input.caPem !== undefined ? { ca: input.caPem } : {}),
            }
          : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            text: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        response.on("error", reject);
      },
    );
    request.on("timeout", () =>
      request.destroy(new Error(`no answer within ${input.timeoutMs ?? 10_000} ms`)),
    );
    request.on("error", reject);
    request.end(body);
  });
}
