// The errors of @kubernetes/client-node (its ApiException), read by their
// shape: the HTTP status, and one line for logs and /readyz instead of the
// client's dump of headers. The agent side's; the plugin's errors are
// http.ts's KubeApiError.

/** The HTTP status of a client-node ApiException. */
export function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

/**
 * One line for a client-node error: the API's Status reason and message
 * where there is one ("403 Forbidden: leases ... is forbidden: ..."), else the error's message
 * and its cause's.
 */
export function describeKubeError(error: unknown): string {
  const status = statusOf(error);
  const body = (error as { body?: unknown } | undefined)?.body;
  if (status !== undefined && typeof body === "string") {
    try {
      const parsed = JSON.parse(body) as { reason?: string; message?: string };
      if (parsed.message) return `${status} ${parsed.reason ?? ""}: ${parsed.message}`;
    } catch {
      // not a Status object
    }
    return `HTTP ${status}`;
  }
  if (!(error instanceof Error)) return String(error);
  // undici's fetch (client-node 2.x) says only "fetch failed"; the cause says
  // what failed ("connect ECONNREFUSED 127.0.0.1:6443").
  const cause = error.cause;
  return cause instanceof Error && cause.message && !error.message.includes(cause.message)
    ? `${error.message}: ${cause.message}`
    : error.message;
}
