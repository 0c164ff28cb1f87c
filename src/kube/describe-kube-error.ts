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
 * where there is one ("403 Forbidden: leases ... is forbidden: ..."), else the error's message.
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
  return error instanceof Error ? error.message : String(error);
}
