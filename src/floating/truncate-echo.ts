// Tenant-supplied text (a pod's annotation, one of its entries) as it is
// echoed back in errors, Events and logs: whole when short, else its start
// and a note of how long it was, so a 4 KiB annotation never fills a CNI
// error, an Event or a log line (issue 13).

/** How many characters of a tenant's value an error, Event or log shows. */
export const ECHO_MAX_CHARS = 64;

/**
 * `value` itself when at most `maxChars` characters (code points) long, else
 * its first `maxChars` and `…(truncated, <n> characters)`.
 */
export function truncateEcho(value: string, maxChars = ECHO_MAX_CHARS): string {
  const chars = Array.from(value);
  if (chars.length <= maxChars) return value;
  return `${chars.slice(0, maxChars).join("")}…(truncated, ${chars.length} characters)`;
}
