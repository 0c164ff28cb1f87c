// When a service-account token was issued and when it expires, read from the
// JWT's own claims (iat, exp), and whether it is due for a new one: at half
// its lifetime, as the kubelet renews projected tokens at 80%, with room for
// a refresher that runs only every few minutes. Pure.

export interface TokenTimes {
  issuedAt: Date;
  expiresAt: Date;
}

/** The token's iat and exp; undefined for a token that is no JWT or carries neither. */
export function tokenTimes(token: string): TokenTimes | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined || token.split(".").length !== 3) return undefined;
  let claims: { iat?: unknown; exp?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as typeof claims;
  } catch {
    return undefined;
  }
  if (typeof claims.iat !== "number" || typeof claims.exp !== "number") return undefined;
  if (!(claims.exp > claims.iat)) return undefined;
  return { issuedAt: new Date(claims.iat * 1000), expiresAt: new Date(claims.exp * 1000) };
}

/** Due once half the lifetime has passed. */
export function refreshDue(times: TokenTimes, now: Date): boolean {
  const half = (times.issuedAt.getTime() + times.expiresAt.getTime()) / 2;
  return now.getTime() >= half;
}
