// Work that is too big for one request (etcd takes at most 128 operations in
// a transaction or a read), done in parts with a few in flight at once.

/**
 * Runs `work` on consecutive parts of `items` of at most `size`, at most
 * `inFlight` at a time; resolves to the results in the parts' order, and
 * rejects with the first failure (after the parts under way have settled).
 */
export async function inParts<T, R>(
  items: readonly T[],
  size: number,
  inFlight: number,
  work: (part: T[]) => Promise<R>,
): Promise<R[]> {
  const parts: T[][] = [];
  for (let start = 0; start < items.length; start += size) {
    parts.push(items.slice(start, start + size));
  }
  const results: R[] = new Array<R>(parts.length);
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < parts.length) {
      const index = next++;
      try {
        results[index] = await work(parts[index] as T[]);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const lanes = await Promise.allSettled(
    Array.from({ length: Math.min(inFlight, parts.length) }, lane),
  );
  const failure = lanes.find((lane) => lane.status === "rejected");
  if (failure) throw (failure as PromiseRejectedResult).reason;
  return results;
}
